"""Build cache export and import (`--cache-to` / `--cache-from`, buildx syntax): cache records
and their layer blobs, carried between machines as an OCI artifact (DESIGN.md §3).

Export (`export_cache`): after a successful build, the cache records of its steps — the target
stage's (`mode=min`, the default) or every stage's (`mode=max`) — plus the record of the
image's first-build `created` time go into one cache config blob (builder.cache.format); the
layer blobs those records name are written in `compression`; a manifest ties them together
and is tagged (`tag=`, default `latest`). The same cache gives the same bytes.

Import contract (`CacheImporter`), chosen so a remote hit costs no more than it must:
* When the build starts, each source's index, manifest and config (small JSON) are read and
  validated. A source that is missing or damaged is a warning naming it and the problem; the
  build goes on without it (as buildx does).
* Nothing else is read until the executor's lookup misses in the local store and the key is
  in an imported config. Then — and only for that step — its layer blob is streamed into the
  store through the verifying BlobWriter (digest and size), decompressed once to check its
  diff_id and that no entry names an absolute or `..` path, and recorded (LayerRecord, then
  the CacheRecord). So a build whose early steps are cached locally fetches only the layers
  of the steps it did not have. Every hit's layer is fetched (not deferred): the image being
  assembled needs the blobs of all its layers, and a later miss needs them unpacked.
  (Limitation: a `mode=max` hit in a stage the target only copies from fetches that stage's
  layer even when the COPY --from is itself a hit.)
* A blob that fails any check drops that record (a warning; the step runs) and leaves no
  layer or cache record in the store.

Backends move blobs only (builder.cache.backend: CacheSource / CacheTarget); `LocalLayout`
(`type=local`) is the one today. A `type=registry` backend implements the same protocols over
the distribution API and plugs into `open_source` / `open_target`.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from builder.cache.backend import CacheSource, CacheTarget
from builder.cache.format import (
    CONFIG_MEDIA_TYPE,
    CacheConfig,
    CacheDamaged,
    CacheLayer,
    manifest_bytes,
    parse_manifest,
    scan_layer,
)
from builder.cache.local import LocalLayout
from builder.digest import Digest
from builder.errors import ImageError, PybuildError, UsageError
from builder.oci.layers import ensure_variant
from builder.oci.model import OCI_MANIFEST, Compression, Descriptor
from builder.store import CacheRecord, LayerRecord, ReadStream, Store

__all__ = ["CacheDamaged", "CacheImporter", "CacheSource", "CacheSpec", "CacheTarget",
           "LocalLayout", "export_cache", "open_source", "open_target", "parse_cache_spec"]

SUPPORTED = "type=local"
_LATER = ("registry", "inline", "gha", "s3", "azblob")
_ATTRS = {
    "to": {"type", "dest", "mode", "compression", "tag", "ignore-error", "oci-mediatypes",
           "image-manifest"},
    "from": {"type", "src", "tag"},
}


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """One parsed `--cache-to` / `--cache-from` value (only type=local today)."""

    direction: str                     # "to" (export) or "from" (import)
    type: str
    path: str
    mode: str = "min"
    compression: Compression = Compression.ZSTD
    tag: str = "latest"
    ignore_error: bool = False

    def describe(self) -> str:
        return f"type={self.type},{'dest' if self.direction == 'to' else 'src'}={self.path}"


def parse_cache_spec(text: str, direction: str) -> CacheSpec:
    """Parse `type=local,dest=DIR[,mode=min|max][,compression=zstd|gzip][,tag=T]
    [,ignore-error=true]` (direction "to") or `type=local,src=DIR[,tag=T]` ("from").
    Raises UsageError naming what is supported."""
    flag = f"--cache-{direction}"
    attrs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            if not attrs and "=" not in text:
                raise UsageError(f"{flag} {text!r}: a bare image reference means a registry "
                                 f"cache, which is not supported yet (supported: {SUPPORTED})",
                                 hint=f"use {flag} type=local,"
                                 f"{'dest' if direction == 'to' else 'src'}=DIR")
            raise UsageError(f"{flag} {text!r}: expected comma-separated KEY=VALUE pairs")
        attrs[key] = value.strip()
    kind = attrs.get("type", "")
    if kind in _LATER:
        raise UsageError(f"{flag} type={kind} is not supported yet (supported: {SUPPORTED})",
                         hint="share the cache through a directory: type=local and your CI's "
                         "cache (see docs/ci.md)")
    if kind != "local":
        raise UsageError(f"{flag} {text!r}: unknown cache type {kind!r} (supported: "
                         f"{SUPPORTED})")
    unknown = sorted(set(attrs) - _ATTRS[direction])
    if unknown:
        raise UsageError(f"{flag} {text!r}: unknown attribute {unknown[0]!r} (supported: "
                         f"{', '.join(sorted(_ATTRS[direction]))})")
    where = "dest" if direction == "to" else "src"
    path = attrs.get(where, "")
    if not path:
        raise UsageError(f"{flag} {text!r}: type=local needs {where}=DIR")
    mode = attrs.get("mode", "min")
    if mode not in ("min", "max"):
        raise UsageError(f"{flag} mode={mode}: expected min or max")
    comp_text = attrs.get("compression", "zstd")
    if comp_text not in ("zstd", "gzip", "uncompressed"):
        raise UsageError(f"{flag} compression={comp_text}: expected zstd, gzip or uncompressed")
    comp = Compression.NONE if comp_text == "uncompressed" else Compression(comp_text)
    tag = attrs.get("tag", "latest")
    if not tag or len(tag) > 128 or any(c in tag for c in "/\\\0\n"):
        raise UsageError(f"{flag} tag={tag!r}: not a valid tag")
    for fixed in ("oci-mediatypes", "image-manifest"):
        # buildx's switches for what we always do: OCI media types, an image manifest
        if attrs.get(fixed, "true").lower() != "true":
            raise UsageError(f"{flag} {fixed}={attrs[fixed]}: pybuild always writes OCI "
                             "media types and an image manifest (only true is accepted)")
    ignore = attrs.get("ignore-error", "false").lower()
    if ignore not in ("true", "false"):
        raise UsageError(f"{flag} ignore-error={ignore}: expected true or false")
    return CacheSpec(direction, "local", path, mode, comp, tag, ignore == "true")


# --- export ------------------------------------------------------------------------------------
def export_cache(store: Store, keys: Iterable[str], spec: CacheSpec) -> Descriptor:
    """Write the cache records `keys` (those present in the store) and their layers to
    `spec`'s directory; returns the manifest descriptor. Raises ImageError on failure, leaving
    the previous export intact."""
    records: dict[str, CacheRecord] = {}
    for key in keys:
        rec = store.get_cache(key)
        if rec is not None:
            records[key] = CacheRecord(rec.key, rec.diff_id, dict(rec.config), rec.created)
    layers: dict[Digest, CacheLayer] = {}
    for rec in records.values():
        if rec.diff_id is None or rec.diff_id in layers:
            continue
        blob = ensure_variant(store, rec.diff_id, spec.compression)
        layer = store.get_layer(rec.diff_id)
        assert layer is not None  # ensure_variant found it
        layers[rec.diff_id] = CacheLayer(rec.diff_id, layer.size,
                                         Descriptor(blob.media_type, blob.digest, blob.size))
    config = CacheConfig(tuple(records.values()), tuple(layers.values())).to_bytes()
    config_desc = Descriptor(CONFIG_MEDIA_TYPE, Digest.of_bytes(config), len(config))
    ordered = sorted(layers.values(), key=lambda la: str(la.diff_id))
    manifest = manifest_bytes(config_desc, [la.blob for la in ordered])
    manifest_desc = Descriptor(OCI_MANIFEST, Digest.of_bytes(manifest), len(manifest))
    target = open_target(spec)
    try:
        with target.locked():
            for la in ordered:
                if not target.has_blob(la.blob):
                    target.put_blob(la.blob, _store_opener(store, la.blob.digest))
            if not target.has_blob(config_desc):
                target.put_blob(config_desc, _bytes_opener(config))
            target.put_manifest(spec.tag, manifest_desc, manifest)
    except OSError as e:
        raise ImageError(f"cannot export the build cache to {spec.path}: {e.strerror or e}",
                         hint="check the directory is writable") from None
    except CacheDamaged as e:
        raise ImageError(f"cannot export the build cache to {spec.path}: {e}") from None
    return manifest_desc


def open_target(spec: CacheSpec) -> CacheTarget:
    """The backend `--cache-to` writes to (only type=local exists; parse_cache_spec refuses
    the others)."""
    if spec.type != "local":
        raise UsageError(f"--cache-to type={spec.type} is not supported yet (supported: "
                         f"{SUPPORTED})")
    return LocalLayout(spec.path)


def open_source(spec: CacheSpec) -> CacheSource:
    """The backend `--cache-from` reads from (see `open_target`)."""
    if spec.type != "local":
        raise UsageError(f"--cache-from type={spec.type} is not supported yet (supported: "
                         f"{SUPPORTED})")
    return LocalLayout(spec.path)


def _store_opener(store: Store, digest: Digest) -> Callable[[], ReadStream]:
    return lambda: store.open_blob(digest)


def _bytes_opener(data: bytes) -> Callable[[], ReadStream]:
    return lambda: io.BytesIO(data)


# --- import ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Entry:
    record: CacheRecord
    layer: CacheLayer | None
    source: CacheSource
    spec: CacheSpec


class CacheImporter:
    """The cache records of `--cache-from` sources, answered lazily (module docstring).

    Call it with a cache key: the CacheRecord (now in the local store, with its layer), or
    None. `warn(message)` reports a source or record that had to be skipped."""

    def __init__(self, store: Store, specs: Sequence[CacheSpec],
                 warn: Callable[[str], None]) -> None:
        self.store = store
        self.warn = warn
        self._entries: dict[str, list[_Entry]] = {}
        self._lock = threading.Lock()
        for spec in specs:
            source = open_source(spec)
            try:
                config = _read_config(source, spec.tag)
            except CacheDamaged as e:
                warn(f"--cache-from {spec.describe()}: {e}; building without it")
                continue
            layers = {la.diff_id: la for la in config.layers}
            for rec in config.records:
                # sources are tried in the order given (as buildx does); a later one is the
                # fallback when an earlier one's copy of the record turns out to be damaged
                self._entries.setdefault(rec.key, []).append(_Entry(
                    rec, layers.get(rec.diff_id) if rec.diff_id else None, source, spec))

    def __call__(self, key: str) -> CacheRecord | None:
        if key not in self._entries:
            return None
        with self._lock:
            entries = self._entries.pop(key, None)
            if entries is None:  # another thread imported (or gave up on) it meanwhile
                return self.store.get_cache(key)
            for entry in entries:
                try:
                    if entry.layer is not None:
                        self._fetch_layer(entry)
                except (CacheDamaged, ImageError, OSError) as e:
                    msg = e.message if isinstance(e, PybuildError) else str(e)
                    self.warn(f"--cache-from {entry.spec.describe()}: record {key[:12]} "
                              f"skipped: {msg}")
                    continue
                self.store.put_cache(entry.record)
                return entry.record
            return None

    def _fetch_layer(self, entry: _Entry) -> None:
        layer = entry.layer
        assert layer is not None
        if self.store.get_layer(layer.diff_id) is not None:
            return  # this machine has the layer already: nothing to download
        blob = layer.blob
        existed = self.store.has_blob(blob.digest)
        if not existed:
            with entry.source.open_blob(blob) as raw:
                try:
                    self.store.put_blob_stream(raw, blob.digest, blob.size)
                except ImageError as e:
                    raise CacheDamaged(f"blob {blob.digest}: {e.message}") from None
        try:
            with self.store.open_blob(blob.digest) as reader:
                diff_id, size = scan_layer(reader, layer.size)
                reader.drain()
            if diff_id != layer.diff_id or size != layer.size:
                raise CacheDamaged(f"blob {blob.digest} holds layer {diff_id} ({size} bytes), "
                                   f"not the {layer.diff_id} ({layer.size} bytes) its record "
                                   "names")
        except BaseException:
            if not existed:  # never keep a blob the cache brought in and we refused
                self.store.blob_path(blob.digest).unlink(missing_ok=True)
            raise
        self.store.put_layer(LayerRecord(diff_id, size, {
            Compression.of_media_type(blob.media_type): blob}))


def _read_config(source: CacheSource, tag: str) -> CacheConfig:
    try:
        _, manifest = source.get_manifest(tag)
        config_desc, blobs = parse_manifest(manifest)
        config = CacheConfig.from_bytes(source.read_blob(config_desc))
    except OSError as e:
        raise CacheDamaged(e.strerror or str(e)) from None
    listed = {b.digest for b in blobs}
    for la in config.layers:
        if la.blob.digest not in listed:
            raise CacheDamaged(f"layer blob {la.blob.digest} is not in the cache manifest")
    return config
