"""The exported cache's artifact format: the cache config blob, the manifest that ties it to
its layer blobs, and the checks that every byte read back from an (untrusted) cache passes.

The artifact is an ordinary OCI image manifest (image-spec manifest.md) whose config is our
own JSON document, media type `CONFIG_MEDIA_TYPE`, and whose `layers` are the layer blobs the
cache records need (ordinary OCI layer media types). Every blob is content-addressed, so any
transport that moves OCI blobs — a layout directory today (`builder.cache.local`), a registry
later — carries it unchanged. The config (canonical JSON, sorted, so the same cache is the
same bytes)::

    {"mediaType": "application/vnd.pybuild.cache.config.v1+json",
     "layers":  [{"diff_id": "sha256:…", "size": N,            # uncompressed tar size
                  "blob": {"mediaType": "…tar+zstd", "digest": "sha256:…", "size": N}}],
     "records": [{"key": "<xxh3-128 hex>", "diff_id": "sha256:…" | null,
                  "config": {"kind": "RUN"} , "created": ""}]}

Like BuildKit's `application/vnd.buildkit.cacheconfig.v0` it maps cache keys to layers, but
it is not byte-compatible with it: our keys are pybuild cache keys (builder.executor.cachekey),
meaningful only to a pybuild of the same key VERSION.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyzstd

from builder.digest import Digest
from builder.oci.apply import GuardedTarInfo, HostileEntry
from builder.oci.changeset import check_relpath
from builder.oci.compression import BLOCK, decompressed
from builder.oci.model import (
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
)
from builder.store import CacheRecord, ReadStream

CONFIG_MEDIA_TYPE = "application/vnd.pybuild.cache.config.v1+json"
LAYER_MEDIA_TYPES = frozenset({OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD})
MAX_DOCUMENT = 16 << 20         # index.json, the manifest, the config: JSON, never huge
_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
_MAX_TEXT = 4096


class CacheDamaged(ValueError):
    """The cache artifact (or one of its blobs) is malformed, inconsistent or hostile."""


@dataclass(frozen=True, slots=True)
class CacheLayer:
    """One layer the cache carries: its diff_id, uncompressed size and the blob holding it."""

    diff_id: Digest
    size: int
    blob: Descriptor


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The cache config document: cache records and the layers they name."""

    records: tuple[CacheRecord, ...]
    layers: tuple[CacheLayer, ...]

    def to_bytes(self) -> bytes:
        return canonical_json({
            "mediaType": CONFIG_MEDIA_TYPE,
            "layers": [{"diff_id": str(la.diff_id), "size": la.size,
                        "blob": la.blob.to_json()}
                       for la in sorted(self.layers, key=lambda la: str(la.diff_id))],
            "records": [{"key": r.key, "diff_id": str(r.diff_id) if r.diff_id else None,
                         "config": dict(r.config), "created": r.created}
                        for r in sorted(self.records, key=lambda r: r.key)],
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> CacheConfig:
        """Parse and validate (raises CacheDamaged): every key well-formed, every record's
        diff_id among the layers, record configs flat JSON scalars, sizes sane."""
        doc = _load(data, "cache config")
        if doc.get("mediaType") != CONFIG_MEDIA_TYPE:
            raise CacheDamaged(f"cache config has mediaType {doc.get('mediaType')!r}, "
                               f"expected {CONFIG_MEDIA_TYPE}")
        layers: dict[Digest, CacheLayer] = {}
        for item in _list(doc, "layers"):
            try:
                blob = Descriptor.from_json(item["blob"])
                layer = CacheLayer(Digest.parse(str(item["diff_id"])), int(item["size"]), blob)
            except (KeyError, TypeError, ValueError) as e:
                raise CacheDamaged(f"malformed layer entry: {e}") from None
            if layer.size < 0 or blob.media_type not in LAYER_MEDIA_TYPES:
                raise CacheDamaged(f"layer {layer.diff_id}: bad size or media type "
                                   f"{blob.media_type!r}")
            layers[layer.diff_id] = layer
        records: dict[str, CacheRecord] = {}
        for item in _list(doc, "records"):
            rec = _record(item)
            if rec.diff_id is not None and rec.diff_id not in layers:
                raise CacheDamaged(f"record {rec.key} names layer {rec.diff_id}, which the "
                                   "cache does not carry")
            records[rec.key] = rec
        return cls(tuple(records.values()), tuple(layers.values()))


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CacheDamaged(f"{what} is not valid JSON: {e}") from None
    except RecursionError:   # [[[[…: json's C scanner recurses once per level
        raise CacheDamaged(f"{what} is not valid JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise CacheDamaged(f"{what} is not a JSON object")
    return doc


def _list(doc: Mapping[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if not isinstance(value, list):
        raise CacheDamaged(f"cache config: {name!r} is not a list")
    return value


def _record(item: Any) -> CacheRecord:
    if not isinstance(item, dict):
        raise CacheDamaged("a cache record is not a JSON object")
    key = item.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise CacheDamaged(f"bad cache key {str(key)[:80]!r}")
    try:
        diff_id = Digest.parse(item["diff_id"]) if item.get("diff_id") is not None else None
    except (TypeError, ValueError) as e:
        raise CacheDamaged(f"record {key}: bad diff_id: {e}") from None
    config = item.get("config", {})
    created = item.get("created", "")
    if not isinstance(config, dict) or not isinstance(created, str) or len(created) > 64:
        raise CacheDamaged(f"record {key}: malformed config or created")
    for k, v in config.items():
        # Records hold small flat metadata (step kind, first-build time): nothing nested,
        # nothing large, so a hostile cache cannot smuggle bulk data into the store.
        if len(k) > 256 or not (v is None or isinstance(v, bool | int | float) or
                                (isinstance(v, str) and len(v) <= _MAX_TEXT)):
            raise CacheDamaged(f"record {key}: config entry {k[:40]!r} is not a small scalar")
    return CacheRecord(key, diff_id, dict(config), created)


def manifest_bytes(config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """The artifact's manifest: our config, then the layer blobs (order of the config)."""
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": config.to_json(),
                           "layers": [d.to_json() for d in layers]})


def parse_manifest(data: bytes) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """(config descriptor, layer descriptors) of a cache manifest; raises CacheDamaged when it
    is not one (e.g. DIR holds an ordinary image)."""
    doc = _load(data, "cache manifest")
    if doc.get("schemaVersion") != 2 or doc.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise CacheDamaged("not an OCI image manifest")
    try:
        config = Descriptor.from_json(doc["config"])
        layers = tuple(Descriptor.from_json(d) for d in doc.get("layers") or ())
    except (KeyError, TypeError, ValueError) as e:
        raise CacheDamaged(f"malformed cache manifest: {e}") from None
    if config.media_type != CONFIG_MEDIA_TYPE:
        raise CacheDamaged(f"not a pybuild cache (config mediaType {config.media_type!r}, "
                           f"expected {CONFIG_MEDIA_TYPE})")
    if config.size > MAX_DOCUMENT:
        raise CacheDamaged(f"cache config of {config.size} bytes is too large")
    return config, layers


class _Hashing:
    """Passes reads through, hashing them (the diff_id is the sha256 of the plain tar), and
    stops a stream that grows past `limit` (a decompression bomb) with CacheDamaged."""

    def __init__(self, src: ReadStream, limit: int | None) -> None:
        self.src = src
        self.hash = hashlib.sha256()
        self.size = 0
        self.limit = limit

    def read(self, n: int = -1, /) -> bytes:
        data = self.src.read(n)
        self.hash.update(data)
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise CacheDamaged(f"the layer is larger than its declared {self.limit} bytes")
        return data


def scan_layer(stream: ReadStream, max_size: int | None = None) -> tuple[Digest, int]:
    """(diff_id, uncompressed size) of a layer blob, refusing (CacheDamaged) a stream that is
    not a tar, is truncated, decompresses to more than `max_size` bytes, or names an
    absolute or `..` path (entry or hardlink target).

    A lexical pre-check, so that a hostile cached layer is dropped at import (the build goes
    on without it) instead of failing the build when it is unpacked; the store's applier
    (builder.oci.apply) still does the full, filesystem-aware checks when it unpacks."""
    try:
        with decompressed(stream) as plain:
            hashing = _Hashing(plain, max_size)
            tf = tarfile.open(fileobj=hashing, mode="r|",  # type: ignore[call-overload]
                              tarinfo=GuardedTarInfo, encoding="utf-8",
                              errors="surrogateescape")
            for member in tf:
                try:
                    check_relpath(member.name)
                    if member.islnk():
                        check_relpath(member.linkname)
                except ValueError as e:
                    raise CacheDamaged(f"entry {member.name[:200]!r}: {e}") from None
            while hashing.read(BLOCK):
                pass
    except HostileEntry as e:
        raise CacheDamaged(str(e)) from None
    except (tarfile.TarError, EOFError, zlib.error, pyzstd.ZstdError, OSError) as e:
        raise CacheDamaged(f"not a readable layer: {e}") from None
    return Digest(hashing.hash.hexdigest()), hashing.size
