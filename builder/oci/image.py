"""Images in the store: assemble (config + layers → manifest), resolve, inspect, recompress.

An image in the store is a manifest blob (or an index blob that leads to one), its config
blob and its layer blobs, plus a LayerRecord per diff_id. Image records (Store.set_image)
name them. Manifests we write use canonical JSON; manifests we load keep their bytes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.layers import (
    changes_from_tree,
    commit_layer,
    ensure_variant,
    store_layer_blob,
)
from builder.oci.model import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    Compression,
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_document,
)
from builder.oci.reference import ImageRef, Transport, parse
from builder.store import LayerRecord, Store


@dataclass(frozen=True, slots=True)
class StoredImage:
    """A resolved image: its manifest (digest and parsed) and config (parsed and raw bytes)."""

    manifest_digest: Digest
    manifest: Manifest
    config: ImageConfig
    config_bytes: bytes
    manifest_bytes: bytes

    @property
    def id(self) -> Digest:
        """The image ID, as Docker shows it: the config digest."""
        return self.manifest.config.digest


def rfc3339(epoch: float) -> str:
    """Seconds since the epoch → RFC 3339 UTC ('2024-01-01T00:00:00Z'), as configs use."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_image(store: Store, config: ImageConfig | bytes, layers: Sequence[Descriptor],
                 annotations: Mapping[str, str] | None = None) -> Descriptor:
    """Store a config blob and an OCI manifest over `layers` (descriptors of stored layer
    blobs, base first); returns the manifest descriptor. Deterministic: canonical JSON."""
    config_bytes = config if isinstance(config, bytes) else config.to_bytes()
    cfg_digest = store.put_blob(config_bytes)
    manifest = Manifest(Descriptor(OCI_CONFIG, cfg_digest, len(config_bytes)), tuple(layers),
                        OCI_MANIFEST, dict(annotations or {}))
    data = manifest.to_bytes()
    return Descriptor(OCI_MANIFEST, store.put_blob(data), len(data))


def read_document(store: Store, digest: Digest) -> Manifest | Index:
    """A stored manifest or index, parsed; ImageError when missing, corrupt or malformed."""
    try:
        return parse_document(store.read_blob(digest))
    except ValueError as e:
        raise ImageError(f"{digest} is not a valid manifest or index: {e}") from None


def resolve_manifest(store: Store, digest: Digest,
                     platform: Platform | None = None) -> Digest:
    """Follow an index (if `digest` names one) to the manifest for `platform` (default: this
    machine's). Raises ImageError when no manifest matches."""
    want = platform or Platform.host()
    for _ in range(8):
        doc = read_document(store, digest)
        if isinstance(doc, Manifest):
            return digest
        index = doc
        candidates = [m for m in index.manifests if m.media_type in MANIFEST_TYPES | INDEX_TYPES
                      and store.has_blob(m.digest)]
        match = [m for m in candidates if m.platform is None
                 or (m.platform.os == want.os and m.platform.architecture == want.architecture)]
        if not match:
            plats = ", ".join(str(m.platform) for m in index.manifests if m.platform)
            raise ImageError(f"index {digest} has no manifest for {want} (has: {plats or '-'})")
        digest = match[0].digest
    raise ImageError(f"index {digest} nests too deeply")


def get_image(store: Store, digest: Digest, platform: Platform | None = None) -> StoredImage:
    """Load a stored image by manifest (or index) digest, verified."""
    mdig = resolve_manifest(store, digest, platform)
    mbytes = store.read_blob(mdig)
    try:
        manifest = Manifest.from_bytes(mbytes)
        cbytes = store.read_blob(manifest.config.digest)
        config = ImageConfig.from_bytes(cbytes)
    except ValueError as e:
        raise ImageError(f"image {mdig} is malformed: {e}") from None
    if len(config.diff_ids) != len(manifest.layers):
        raise ImageError(f"image {mdig}: {len(manifest.layers)} layers but "
                         f"{len(config.diff_ids)} diff_ids in its config")
    return StoredImage(mdig, manifest, config, cbytes, mbytes)


def lookup(store: Store, text: str) -> tuple[str | None, Digest]:
    """Find a stored image by name (normalised; tried first, as Docker does), then by full
    digest or ID prefix (of the config or manifest digest, ≥ 4 hex). Returns (record name or
    None, manifest/index digest). Raises ImageError when nothing (or more than one image)
    matches."""
    ref = None
    with contextlib.suppress(ValueError):
        ref = parse(text)
    if ref is not None and ref.transport is not Transport.NAME:
        raise ImageError(f"{text} is not a stored image name; use `pybuild load`")
    if ref is not None:
        if ref.digest is not None and store.has_blob(ref.digest):
            return ref.name, ref.digest
        found = store.get_image(ref.name)
        if found is not None:
            return ref.name, found
    raw = text.removeprefix("sha256:")
    if len(raw) >= 4 and all(c in "0123456789abcdef" for c in raw):
        hits = {(n, d) for n, d in store.images().items()
                if d.hex.startswith(raw) or _config_id(store, d).startswith(raw)}
        if len({d for _, d in hits}) == 1:
            return sorted(hits, key=lambda h: h[0])[0]
        if len({d for _, d in hits}) > 1:
            raise ImageError(f"image ID {text!r} is ambiguous")
        if len(raw) == 64 and store.has_blob(Digest(raw)):
            return None, Digest(raw)
    shown = ref.familiar if ref is not None else text
    raise ImageError(f"no such image: {shown}", hint="see `pybuild images`; load or pull it "
                     "first")


def _config_id(store: Store, digest: Digest) -> str:
    try:
        return get_image(store, digest).id.hex
    except (ImageError, ValueError):
        return ""


def record_layers(store: Store, manifest_digest: Digest) -> StoredImage:
    """Make sure every layer of a loaded/pulled image has a LayerRecord, computing (and
    checking against the config's diff_ids) the uncompressed digests where needed."""
    img = get_image(store, manifest_digest)
    for i, (desc, diff_id) in enumerate(zip(img.manifest.layers, img.config.diff_ids,
                                            strict=True)):
        rec = store.get_layer(diff_id)
        comp = Compression.of_media_type(desc.media_type)
        if rec is not None and comp in rec.variants and rec.variants[comp].digest == desc.digest:
            continue
        if not store.has_blob(desc.digest):
            raise ImageError(f"image {manifest_digest}: layer {i} blob {desc.digest} missing")
        got = store_layer_blob(store, desc.digest, desc.media_type)
        if got.diff_id != diff_id:
            raise ImageError(f"image {manifest_digest}: layer {i} ({desc.digest}) "
                             f"decompresses to {got.diff_id}, but the config says {diff_id}")
    return img


def convert_manifest(store: Store, manifest_digest: Digest,
                     compression: Compression) -> Descriptor:
    """The image with every layer in `compression` (OCI media types). Returns the manifest
    itself, byte for byte, when its layers already are; otherwise a new manifest (config
    unchanged, so the image ID is the same). Conversions are remembered by the store."""
    img = get_image(store, manifest_digest)
    target = compression.oci_media_type
    if all(layer.media_type == target for layer in img.manifest.layers) and \
            img.manifest.media_type == OCI_MANIFEST:
        return Descriptor(OCI_MANIFEST, manifest_digest, len(img.manifest_bytes))
    layers = []
    for desc, diff_id in zip(img.manifest.layers, img.config.diff_ids, strict=True):
        if store.get_layer(diff_id) is None:
            record_layers(store, manifest_digest)
        v = ensure_variant(store, diff_id, compression)
        layers.append(Descriptor(v.media_type, v.digest, v.size, desc.annotations))
    config = Descriptor(OCI_CONFIG, img.manifest.config.digest, img.manifest.config.size)
    data = Manifest(config, tuple(layers), OCI_MANIFEST, img.manifest.annotations).to_bytes()
    return Descriptor(OCI_MANIFEST, store.put_blob(data), len(data))


def import_rootfs(store: Store, source: str | os.PathLike[str], *,
                  source_date_epoch: int | None = None, comment: str = "",
                  created_by: str = "pybuild import") -> Descriptor:
    """`docker import`: a directory or a tar (gzip/zstd/plain) → a one-layer image. A tar is
    unpacked with the safe applier into scratch space first, so a hostile tar is refused.
    Returns the manifest descriptor (the caller tags it)."""
    from builder.oci.layers import apply_layer

    src = Path(source)
    if src.is_dir():
        rec = commit_layer(store, changes_from_tree(src), source_date_epoch=source_date_epoch)
    elif src.is_file():
        with store.temp_dir("import-") as scratch:
            root = scratch / "rootfs"
            root.mkdir()
            with open(src, "rb") as f:
                apply_layer(f, root, name=src.name)
            rec = commit_layer(store, changes_from_tree(root),
                               source_date_epoch=source_date_epoch)
    else:
        raise ImageError(f"cannot import {src}: not a directory or a file")
    return commit_single_layer_image(store, rec, source_date_epoch=source_date_epoch,
                                     comment=comment, created_by=created_by)


def commit_single_layer_image(store: Store, rec: LayerRecord, *,
                              source_date_epoch: int | None = None, comment: str = "",
                              created_by: str = "") -> Descriptor:
    created = rfc3339(source_date_epoch if source_date_epoch is not None else time.time())
    plat = Platform.host()
    config = ImageConfig(architecture=plat.architecture, os=plat.os, variant=plat.variant,
                         created=created, diff_ids=(rec.diff_id,),
                         history=(History(created=created, created_by=created_by,
                                          comment=comment),))
    return commit_image(store, config, [rec.best_for_reading()])


def chain_id(diff_ids: Sequence[Digest]) -> Digest:
    """The OCI ChainID of a layer stack (image-spec config.md "Layer ChainID"):
    ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    if not diff_ids:
        raise ValueError("an empty layer stack has no ChainID")
    chain = diff_ids[0]
    for d in diff_ids[1:]:
        chain = Digest.of_bytes(f"{chain} {d}".encode())
    return chain


def checkout(store: Store, diff_ids: Sequence[Digest]) -> Path:
    """A read-only-by-convention rootfs with `diff_ids` applied (base first), unpacked once and
    kept in the store under its ChainID (an empty stack gives an empty dir). Callers that
    modify a checkout must copy it (or mount it as an overlay lower) first."""
    key = "empty" if not diff_ids else chain_id(diff_ids).hex
    path = store.rootfs_path(key)
    if store.has_rootfs(key):
        return path
    from builder.oci.layers import apply_layers

    with store.lock(f"rootfs-{key[:32]}"), store.new_rootfs(key) as tmp:
        if not store.has_rootfs(key):
            apply_layers(store, diff_ids, tmp)
    return path


def ref_for_store(text: str) -> ImageRef:
    """Parse a NAME[:TAG] for tagging in the store (ImageError if it is not a name)."""
    try:
        ref = parse(text)
    except ValueError as e:
        raise ImageError(f"invalid image name {text!r}: {e}") from None
    if ref.transport is not Transport.NAME:
        raise ImageError(f"{text!r} is not an image name")
    return ref
