"""Image formats on disk: OCI image layout directories, OCI archives and docker-archive tarballs.

Read: everything is streamed into the store with digest verification (a blob whose bytes do
not match its name is refused), then layers are recorded by diff_id.
Write: OCI layouts (`oci-layout`, `index.json`, `blobs/sha256/…`, one index entry per image
annotated with `org.opencontainers.image.ref.name` = tag, as skopeo and umoci expect; image-spec
image-layout.md), OCI archives (a deterministic tar of such a layout) and docker-archives
(`manifest.json` + `repositories`, uncompressed layers, as `docker save` writes them).
Archives are written to a temp file and renamed into place: never a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.image import convert_manifest, get_image, read_document, record_layers
from builder.oci.layers import decompressed, open_uncompressed
from builder.oci.model import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYOUT_VERSION,
    OCI_MANIFEST,
    Compression,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    canonical_json,
)
from builder.oci.reference import ImageRef, Transport, parse_name
from builder.store import ReadStream, Store, atomic_write, fsync_dir

_META_MAX = 16 << 20  # index.json, manifest.json, repositories: JSON, never huge
_BLOB_RE = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """One image found in a layout or archive and now in the store.

    `name` is the normalised name it carried (None when it had none), `manifest` the
    descriptor of its manifest (or index) in the store."""

    name: str | None
    manifest: Descriptor


# --- reading -----------------------------------------------------------------------------------
def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{what} is not valid JSON: {e}") from None


def _name_for(desc: Descriptor, fallback_repo: str) -> str | None:
    """The image name an index entry carries: containerd's full name, else ref.name (a full
    reference, or just a tag as skopeo writes it → `fallback_repo:tag`)."""
    full = desc.annotations.get(ANNOTATION_CONTAINERD_NAME)
    ref = desc.annotations.get(ANNOTATION_REF_NAME)
    for cand in (full, ref):
        if not cand:
            continue
        with contextlib.suppress(ValueError):
            if "/" in cand or ":" in cand or "@" in cand:
                return parse_name(cand).name
    if ref:
        with contextlib.suppress(ValueError):
            return parse_name(f"{fallback_repo}:{ref}").name
    return None


def _fallback_repo(path: str) -> str:
    stem = Path(path.rstrip("/")).name.split(".")[0].lower()
    stem = re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "image"
    return f"localhost/{stem}"


def _load_index(store: Store, index_bytes: bytes, origin: str, tag: str | None,
                digest: Digest | None) -> list[LoadedImage]:
    try:
        index = Index.from_bytes(index_bytes)
    except ValueError as e:
        raise ImageError(f"{origin}: index.json: {e}") from None
    out: list[LoadedImage] = []
    for desc in index.manifests:
        name = _name_for(desc, _fallback_repo(origin))
        if tag is not None and desc.annotations.get(ANNOTATION_REF_NAME) != tag \
                and (name is None or not name.endswith(f":{tag}")):
            continue
        if digest is not None and desc.digest != digest:
            continue
        if desc.media_type not in MANIFEST_TYPES | INDEX_TYPES:
            continue
        if not store.has_blob(desc.digest):
            raise ImageError(f"{origin}: index.json names {desc.digest}, which is missing")
        record_image(store, desc.digest, origin)
        out.append(LoadedImage(name, desc))
    if not out:
        what = f" tagged {tag!r}" if tag else (f" with digest {digest}" if digest else "")
        raise ImageError(f"{origin}: no image{what} in the layout")
    return out


def record_image(store: Store, digest: Digest, origin: str) -> None:
    """Record layers of a manifest, or of each manifest of an index whose blobs are here
    (the last step of importing an image: loading a layout or archive, or a registry pull).
    Every blob the manifest names must already be stored; ImageError naming `origin` if not."""
    man = read_document(store, digest)
    if isinstance(man, Index):
        for m in man.manifests:
            if store.has_blob(m.digest):
                record_image(store, m.digest, origin)
        return
    for blob in (man.config, *man.layers):
        if not store.has_blob(blob.digest):
            raise ImageError(f"{origin}: manifest {digest} needs blob {blob.digest}, "
                             "which is missing")
    record_layers(store, digest)


def load_layout(store: Store, path: str | os.PathLike[str], tag: str | None = None,
                digest: Digest | None = None) -> list[LoadedImage]:
    """Copy the images of an OCI layout directory (all, or the one with `tag`/`digest`) into
    the store, verifying every blob."""
    root = Path(path)
    try:
        layout = _json((root / "oci-layout").read_bytes(), f"{root}/oci-layout")
        index_bytes = (root / "index.json").read_bytes()
    except FileNotFoundError as e:
        raise ImageError(f"{root} is not an OCI image layout (missing {Path(e.filename).name})"
                         ) from None
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise ImageError(f"{root}/oci-layout has no imageLayoutVersion")
    blob_dir = root / "blobs" / "sha256"
    if blob_dir.is_dir():
        for entry in os.scandir(blob_dir):
            if not re.fullmatch(r"[0-9a-f]{64}", entry.name) or not entry.is_file(
                    follow_symlinks=False):
                continue
            d = Digest(entry.name)
            if store.has_blob(d):
                continue
            with open(entry.path, "rb") as f:
                store.put_blob_stream(f, expected=d)
    return _load_index(store, index_bytes, str(root), tag, digest)


def _ingest_tar(store: Store, f: ReadStream, origin: str) -> tuple[dict[str, bytes],
                                                                 dict[str, Descriptor]]:
    """Stream every regular member of an archive into the store. Returns (small metadata
    files by name, blob descriptor by member name). Members named blobs/sha256/<hex> must
    hash to <hex>."""
    meta: dict[str, bytes] = {}
    blobs: dict[str, Descriptor] = {}
    try:
        with decompressed(f) as plain:
            tf = tarfile.open(fileobj=plain, mode="r|")
            for m in tf:
                name = m.name
                while name.startswith("./"):
                    name = name[2:]
                if not m.isreg():
                    continue
                src = tf.extractfile(m)
                assert src is not None
                if name in ("oci-layout", "index.json", "manifest.json", "repositories"):
                    if m.size > _META_MAX:
                        raise ImageError(f"{origin}: {name} is {m.size} bytes; refusing")
                    meta[name] = src.read()
                    continue
                bm = _BLOB_RE.match(name)
                expected = Digest(bm.group(1)) if bm else None
                digest = store.put_blob_stream(src, expected=expected, expected_size=m.size)
                blobs[name] = Descriptor("", digest, m.size)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ImageError(f"{origin}: not a readable archive: {e}") from None
    return meta, blobs


def load_archive(store: Store, path: str | os.PathLike[str], tag: str | None = None,
                 digest: Digest | None = None) -> list[LoadedImage]:
    """Load an OCI archive or a docker-archive (auto-detected; optionally gzip/zstd
    compressed) into the store. Every blob is verified."""
    origin = os.fspath(path)
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise ImageError(f"cannot open {origin}: {e.strerror}") from None
    with f:
        meta, blobs = _ingest_tar(store, f, origin)
    if "oci-layout" in meta and "index.json" in meta:
        return _load_index(store, meta["index.json"], origin, tag, digest)
    if "manifest.json" in meta:
        return _load_docker(store, meta["manifest.json"], blobs, origin)
    raise ImageError(f"{origin} is neither an OCI archive (no oci-layout/index.json) nor a "
                     "docker-archive (no manifest.json)")


def _load_docker(store: Store, manifest_json: bytes, blobs: dict[str, Descriptor],
                 origin: str) -> list[LoadedImage]:
    entries = _json(manifest_json, f"{origin}: manifest.json")
    if not isinstance(entries, list):
        raise ImageError(f"{origin}: manifest.json is not a list")
    out: list[LoadedImage] = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "Config" not in e or "Layers" not in e:
            raise ImageError(f"{origin}: manifest.json entry {i} lacks Config or Layers")

        def blob(name: str) -> Descriptor:
            d = blobs.get(name.removeprefix("./"))
            if d is None:
                raise ImageError(f"{origin}: manifest.json names {name!r}, not in the archive")
            return d

        cfg = blob(e["Config"])
        try:
            config = ImageConfig.from_bytes(store.read_blob(cfg.digest))
        except ValueError as err:
            raise ImageError(f"{origin}: config {e['Config']}: {err}") from None
        if len(config.diff_ids) != len(e["Layers"]):
            raise ImageError(f"{origin}: {len(e['Layers'])} layers but "
                             f"{len(config.diff_ids)} diff_ids in the config")
        layers = []
        for lname in e["Layers"]:
            d = blob(lname)
            with store.open_blob(d.digest) as r:
                head = r.read(4)
            comp = (Compression.GZIP if head[:2] == b"\x1f\x8b" else Compression.ZSTD
                    if head == b"\x28\xb5\x2f\xfd" else Compression.NONE)
            layers.append(Descriptor(comp.oci_media_type, d.digest, d.size))
        # The config keeps its bytes (so the image ID is unchanged); the manifest is new.
        man = Manifest(Descriptor(OCI_CONFIG, cfg.digest, cfg.size), tuple(layers))
        data = man.to_bytes()
        mdesc = Descriptor(OCI_MANIFEST, store.put_blob(data), len(data))
        record_layers(store, mdesc.digest)
        tags = e.get("RepoTags") or []
        if not tags:
            out.append(LoadedImage(None, mdesc))
        for t in tags:
            try:
                out.append(LoadedImage(parse_name(t).name, mdesc))
            except ValueError:
                raise ImageError(f"{origin}: bad RepoTag {t!r}") from None
    return out


def load(store: Store, ref: ImageRef) -> list[LoadedImage]:
    """Load the image(s) a file reference names (oci-layout://, oci-archive:, docker-archive:)
    into the store."""
    if ref.transport is Transport.OCI_LAYOUT:
        return load_layout(store, ref.location, ref.tag or None, ref.digest)
    if ref.transport in (Transport.OCI_ARCHIVE, Transport.DOCKER_ARCHIVE):
        images = load_archive(store, ref.location, ref.tag or None
                              if ref.transport is Transport.OCI_ARCHIVE else None, ref.digest)
        if ref.transport is Transport.DOCKER_ARCHIVE and ref.path:
            images = [i for i in images if i.name == ref.name] or images[:0]
            if not images:
                raise ImageError(f"{ref.location} has no image named {ref.familiar}")
        return images
    raise ImageError(f"{ref} is not a file reference")


# --- writing -----------------------------------------------------------------------------------
def _image_blobs(store: Store, manifest: Descriptor) -> list[Descriptor]:
    """Every blob an image (manifest or index) needs, the manifest itself included."""
    doc = read_document(store, manifest.digest)
    out = [manifest]
    if isinstance(doc, Index):
        for m in doc.manifests:
            if store.has_blob(m.digest):
                out += _image_blobs(store, m)
        return out
    return out + [doc.config, *doc.layers]


def _index_entry(manifest: Descriptor, name: str | None, tag: str | None) -> Descriptor:
    ann: dict[str, str] = {}
    if tag:
        ann[ANNOTATION_REF_NAME] = tag
    if name:
        ann[ANNOTATION_CONTAINERD_NAME] = name
    return Descriptor(manifest.media_type or OCI_MANIFEST, manifest.digest, manifest.size, ann)


def write_layout(store: Store, path: str | os.PathLike[str], manifest_digest: Digest, *,
                 tag: str | None = None, name: str | None = None,
                 compression: Compression = Compression.GZIP) -> Descriptor:
    """Write (or add to) an OCI layout directory. An existing entry with the same tag is
    replaced; others are kept. Returns the manifest descriptor written."""
    root = Path(path)
    desc = convert_manifest(store, manifest_digest, compression)
    blob_dir = root / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for b in _image_blobs(store, desc):
        dest = blob_dir / b.digest.hex
        if dest.exists():
            continue
        with _atomic_file(dest) as out, store.open_blob(b.digest) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    fsync_dir(blob_dir)
    manifests: list[Descriptor] = []
    index_path = root / "index.json"
    if index_path.exists():
        try:
            old = Index.from_bytes(index_path.read_bytes())
        except ValueError as e:
            raise ImageError(f"{index_path}: {e}") from None
        manifests = [m for m in old.manifests
                     if not tag or m.annotations.get(ANNOTATION_REF_NAME) != tag]
    manifests.append(_index_entry(desc, name, tag))
    atomic_write(root / "oci-layout", canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    atomic_write(index_path, Index(tuple(manifests), OCI_INDEX).to_bytes())
    return desc


class _TarOut:
    """A deterministic tar writer (fixed owner, mode and mtime 0) over a file object."""

    def __init__(self, f: IO[bytes]) -> None:
        self.tf = tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT)
        self._dirs: set[str] = set()

    def _info(self, name: str, type_: bytes, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = type_
        info.size = size
        info.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
        info.mtime = 0
        info.uname = info.gname = ""
        return info

    def dir(self, name: str) -> None:
        if name not in self._dirs:
            self._dirs.add(name)
            self.tf.addfile(self._info(name + "/", tarfile.DIRTYPE))

    def bytes(self, name: str, data: bytes) -> None:
        import io

        self.tf.addfile(self._info(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))

    def stream(self, name: str, size: int, src: ReadStream) -> None:
        self.tf.addfile(self._info(name, tarfile.REGTYPE, size), _FullReads(src))

    def close(self) -> None:
        self.tf.close()


class _FullReads:
    """tarfile treats a short read as EOF; decompressors return short reads. Fill them."""

    def __init__(self, src: ReadStream) -> None:
        self._src = src

    def read(self, n: int = -1, /) -> bytes:
        data = self._src.read(n)
        if n < 0:
            return data
        if len(data) == n or not data:
            return data
        parts = [data]
        got = len(data)
        while got < n and (more := self._src.read(n - got)):
            parts.append(more)
            got += len(more)
        return b"".join(parts)


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    dest = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent or ".")
    except OSError as e:
        raise ImageError(f"cannot write {dest}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_oci_archive(store: Store, path: str | os.PathLike[str],
                      images: Sequence[tuple[Digest, str | None, str | None]], *,
                      compression: Compression = Compression.GZIP) -> list[Descriptor]:
    """Write an OCI archive of `images` = (manifest digest, name, tag) triples; blobs sorted,
    byte-identical for the same input. Returns the manifest descriptors."""
    entries: list[Descriptor] = []
    blobs: dict[Digest, Descriptor] = {}
    for digest, name, tag in images:
        desc = convert_manifest(store, digest, compression)
        entries.append(_index_entry(desc, name, tag))
        for b in _image_blobs(store, desc):
            blobs[b.digest] = b
    with _atomic_file(path) as f:
        out = _TarOut(f)
        out.bytes("oci-layout", canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        out.bytes("index.json", Index(tuple(entries), OCI_INDEX).to_bytes())
        out.dir("blobs")
        out.dir("blobs/sha256")
        for d in sorted(blobs):
            with store.open_blob(d) as src:
                out.stream(f"blobs/sha256/{d.hex}", store.blob_size(d), src)  # type: ignore[arg-type]
        out.close()
    return [Descriptor(e.media_type, e.digest, e.size) for e in entries]


def write_docker_archive(store: Store, path: str | os.PathLike[str],
                         images: Sequence[tuple[Digest, Sequence[str]]]) -> None:
    """Write a `docker save`-style archive of `images` = (manifest digest, familiar repo tags):
    `<config hex>.json`, `<diff_id hex>.tar` (uncompressed), `manifest.json`,
    `repositories`."""
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    files: dict[str, tuple[str, Digest]] = {}
    for digest, tags in images:
        img = get_image(store, digest)
        record_layers(store, img.manifest_digest)
        cfg_name = f"{img.id.hex}.json"
        files[cfg_name] = ("config", img.id)
        layer_names = []
        for diff_id in img.config.diff_ids:
            lname = f"{diff_id.hex}.tar"
            files[lname] = ("layer", diff_id)
            layer_names.append(lname)
        manifest_json.append({"Config": cfg_name, "RepoTags": list(tags), "Layers": layer_names})
        for t in tags:
            repo, _, tg = t.rpartition(":")
            if layer_names:
                repositories.setdefault(repo, {})[tg] = img.config.diff_ids[-1].hex
    with _atomic_file(path) as f:
        out = _TarOut(f)
        for name in sorted(files):
            kind, d = files[name]
            if kind == "config":
                out.bytes(name, store.read_blob(d))
            else:
                rec = store.get_layer(d)
                assert rec is not None
                with open_uncompressed(store, d) as src:
                    out.stream(name, rec.size, src)
        out.bytes("manifest.json", canonical_json(manifest_json))
        out.bytes("repositories", canonical_json(repositories))
        out.close()


def export(store: Store, manifest_digest: Digest, ref: ImageRef, *,
           name: str | None = None, compression: Compression = Compression.GZIP) -> Descriptor:
    """Write a stored image to a file reference (oci-layout://DIR[:TAG], oci-archive:FILE[:TAG],
    docker-archive:FILE[:NAME:TAG]). `name` is the image's normalised store name, used for
    annotations and docker RepoTags when the reference does not give one."""
    tag = ref.tag or (name.rpartition(":")[2] if name and ":" in name.rpartition("/")[2]
                      else None)
    if ref.transport is Transport.OCI_LAYOUT:
        return write_layout(store, ref.location, manifest_digest, tag=tag, name=name,
                            compression=compression)
    if ref.transport is Transport.OCI_ARCHIVE:
        return write_oci_archive(store, ref.location, [(manifest_digest, name, tag)],
                                 compression=compression)[0]
    if ref.transport is Transport.DOCKER_ARCHIVE:
        tag_name = ref.familiar if ref.path else (
            parse_name(name).familiar if name else None)
        write_docker_archive(store, ref.location, [(manifest_digest,
                                                    [tag_name] if tag_name else [])])
        img = get_image(store, manifest_digest)
        return Descriptor(OCI_MANIFEST, img.manifest_digest, len(img.manifest_bytes))
    raise ImageError(f"{ref} is not a file reference")

