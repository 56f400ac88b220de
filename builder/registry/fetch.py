"""Remote files for ADD <url>: a conditional download into the store, remembered per URL.

The network is builder.registry.transport's (`open_url`); this module owns what we remember
about a URL between builds — a small record in the store's cache directory keyed by the URL,
holding the content digest and the validators (ETag, Last-Modified) the server sent — and turns
a 304 Not Modified back into that digest. The bytes live in the store as a blob, so a second
build sends `If-None-Match`/`If-Modified-Since` and, on a 304, downloads nothing.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass

from builder.digest import Digest, Fingerprint
from builder.errors import ImageError, RegistryError
from builder.registry.transport import fetch_max, open_url, redact
from builder.store import CacheRecord, Store

_RECORD = "pybuild.http-source/v1"


@dataclass(frozen=True, slots=True)
class Remote:
    """A remote file as stored: its content digest, size and the server's validators
    (`last_modified` is the raw header, "" when the server sent none)."""

    url: str
    digest: Digest
    etag: str = ""
    last_modified: str = ""

    @property
    def mtime(self) -> int:
        """Seconds since the epoch from Last-Modified; 0 when absent or unparseable (BuildKit
        sets the file's mtime from Last-Modified, else the Unix epoch)."""
        if not self.last_modified:
            return 0
        try:
            return int(email.utils.parsedate_to_datetime(self.last_modified).timestamp())
        except (TypeError, ValueError, IndexError):
            return 0


class ChecksumMismatch(RegistryError):
    """The downloaded content does not hash to ADD --checksum (nothing was stored)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"checksum mismatch for {url}: {detail}",
                         hint="fix --checksum, or check that the URL serves the file you "
                         "expect; nothing was stored")


def _record_key(url: str) -> str:
    return Fingerprint.of_parts(_RECORD, url).hex


def remembered(store: Store, url: str) -> Remote | None:
    """What the last download of `url` left in the store (None when nothing, or when its
    blob has since been pruned)."""
    rec = store.get_cache(_record_key(url))
    if rec is None or rec.config.get("url") != redact(url) or not rec.blobs:
        return None
    digest = rec.blobs[0]
    if not store.has_blob(digest):
        return None
    return Remote(url, digest, str(rec.config.get("etag") or ""),
                  str(rec.config.get("last_modified") or ""))


def fetch(store: Store, url: str, *, expected: Digest | None = None, revalidate: bool = True,
          environ: Mapping[str, str] | None = None) -> tuple[Remote, bool]:
    """The content of `url` in the store, and whether it was downloaded (False: the server
    answered 304 to the validators remembered from the last download).

    `revalidate=False` ignores what is remembered (an unconditional GET, as for --no-cache).
    `expected` (ADD --checksum) is verified while streaming: a mismatch raises
    ChecksumMismatch and stores nothing. A body larger than $PYBUILD_FETCH_MAX_BYTES is
    refused; every network failure is a RegistryError naming the URL."""
    known = remembered(store, url) if revalidate else None
    if known is not None and expected is not None and known.digest != expected:
        known = None    # a 304 would confirm content that --checksum already refuses
    shown = redact(url)
    headers: dict[str, str] = {}
    if known is not None:
        if known.etag:
            headers["If-None-Match"] = known.etag
        if known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
    limit = fetch_max(environ)
    with open_url(url, headers=headers, environ=environ) as resp:
        if resp.status == 304:
            if known is None or not headers:
                raise RegistryError(f"GET {shown}: HTTP 304 Not Modified to an unconditional "
                                    "request")
            return known, False
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > limit:
            raise RegistryError(f"GET {shown}: the file is {int(length)} bytes, more than the "
                                f"{limit} allowed", hint="raise $PYBUILD_FETCH_MAX_BYTES")
        with store.blob_writer(expected) as w:
            while block := resp.read(1 << 20):
                w.write(block)
                if w.size > limit:
                    raise RegistryError(f"GET {shown}: the file is larger than the {limit} "
                                        "bytes allowed", hint="raise $PYBUILD_FETCH_MAX_BYTES")
            try:
                digest = w.commit()
            except ImageError as err:  # the writer's "expected X, got Y"; nothing published
                raise ChecksumMismatch(shown, err.message.removeprefix("blob digest mismatch: ")
                                       ) from None
        remote = Remote(url, digest, resp.headers.get("ETag") or "",
                        resp.headers.get("Last-Modified") or "")
    store.put_cache(CacheRecord(_record_key(url), None,
                                {"kind": "http", "url": shown, "etag": remote.etag,
                                 "last_modified": remote.last_modified},
                                blobs=(digest,)))
    return remote, True
