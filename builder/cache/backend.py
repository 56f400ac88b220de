"""The cache backend interface: what a place that holds exported caches must do — move
content-addressed blobs and name one manifest per tag. Format and import logic live above it
(builder.cache), so a backend knows nothing of cache records.

`LocalLayout` (builder.cache.local, `type=local`) implements both protocols. A `type=registry`
backend maps them onto the distribution API (builder/registry's Client): `get_manifest` =
GET /v2/<name>/manifests/<tag>, `open_blob`/`read_blob` = GET blobs, `has_blob` = HEAD,
`put_blob` = the upload session, `put_manifest` = PUT the manifest under the tag; `locked`
is a no-op there (a registry swaps a tag atomically).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from builder.oci.model import Descriptor
from builder.store import ReadStream


class CacheSource(Protocol):
    """Where `--cache-from` reads. Every method raises CacheDamaged (builder.cache.format) or
    OSError when the content is missing or wrong; none trusts what it reads."""

    def get_manifest(self, tag: str) -> tuple[Descriptor, bytes]:
        """The manifest tagged `tag`: its descriptor and its bytes, verified and bounded."""
        ...

    def read_blob(self, desc: Descriptor) -> bytes:
        """A small (JSON) blob, whole, verified against `desc` (digest and size)."""
        ...

    def open_blob(self, desc: Descriptor) -> contextlib.AbstractContextManager[ReadStream]:
        """A large blob as a stream of raw, unverified bytes: the caller verifies (it streams
        them through the store's BlobWriter with the expected digest and size)."""
        ...


class CacheTarget(Protocol):
    """Where `--cache-to` writes. A failure leaves the previous cache under the tag intact."""

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Exclude other writers for the duration of one export."""
        ...

    def has_blob(self, desc: Descriptor) -> bool:
        """True when an intact copy is there (so it is not written again)."""
        ...

    def put_blob(self, desc: Descriptor, opener: Callable[[], ReadStream]) -> None:
        """Store a blob (opener gives its bytes), atomically, verifying what was written."""
        ...

    def put_manifest(self, tag: str, desc: Descriptor, data: bytes) -> None:
        """Store the manifest and point `tag` at it — last, after every blob it names."""
        ...
