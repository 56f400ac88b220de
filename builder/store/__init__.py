"""The content-addressed store: the ONLY owner of pybuild's on-disk paths (DESIGN.md §4).

Layout under the root (see docs/store.md)::

    blobs/sha256/<hex>         every blob (layers, configs, manifests), named by its sha256
    layers/<diff_id hex>.json  LayerRecord: the blobs (per compression) holding one layer
    images.json                image records: normalised name → manifest digest
    cache/<k[:2]>/<k>.json     CacheRecord per cache key (a Fingerprint string)
    cache/<k[:2]>/build-<k>.stamps  a build's stat stamps (builder.buildstamp), marshal
    rootfs/<key>/              unpacked root filesystems (regenerable checkouts)
    tmp/                       temp files and dirs (same filesystem, so rename is atomic)
    locks/                     flock(2) files: gc.lock, images.lock, layers.lock, rootfs-<key>.lock
    statmemo.sqlite            (path, size, mtime_ns, ino, ctime_ns) → content fingerprint

Contracts:
* Every write is atomic: temp file in tmp/, fsync, rename(2), fsync of the directory. A
  crash (even SIGKILL) leaves at most an invisible temp file that the next `prune` removes.
* Blob reads verify the digest (`open_blob` raises ImageError at EOF on mismatch).
* `in_use()` takes the shared GC lock for the duration of a build; `prune()` takes it
  exclusively, so garbage collection never deletes what an in-flight build uses.
* Two processes sharing one store never corrupt it: blobs are immutable and named by content
  (concurrent writers of the same blob both rename identical bytes into place), and the few
  mutable records are read-modify-written under an exclusive flock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builder.buildstamp import file_path as stamp_file
from builder.digest import Digest
from builder.errors import EnvironmentProblem, ImageError
from builder.oci.model import ImageConfig, Index, canonical_json, parse_document
from builder.store.blobs import (
    BlobWriter,
    ReadStream,
    VerifiedReader,
    atomic_write,
    fsync_dir,
)
from builder.store.records import CacheRecord, LayerRecord, PruneReport
from builder.store.statmemo import StatMemo
from builder.storeroot import ENV_ROOT, SYSTEM_ROOT, default_root, resolve_root

__all__ = [
    "ENV_ROOT", "SYSTEM_ROOT", "BlobWriter", "CacheRecord", "LayerRecord", "PruneReport",
    "ReadStream", "StatMemo", "Store", "VerifiedReader", "atomic_write", "default_root",
    "fsync_dir", "resolve_root",
]

class Store:
    """A pybuild store rooted at `root` (created on first use). Thread- and process-safe."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blob_root = self.root / "blobs" / "sha256"
        self.layer_root = self.root / "layers"
        self.cache_root = self.root / "cache"
        self.rootfs_root = self.root / "rootfs"
        self.tmp_root = self.root / "tmp"
        self.lock_root = self.root / "locks"
        self.images_file = self.root / "images.json"
        try:
            for d in (self.blob_root, self.layer_root, self.cache_root, self.rootfs_root,
                      self.tmp_root, self.lock_root):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EnvironmentProblem(
                f"cannot use {self.root} as the pybuild store: {e.strerror}",
                hint=f"pass --root DIR or set {ENV_ROOT} to a writable directory") from None

    # blobs ------------------------------------------------------------------------------------
    def blob_path(self, digest: Digest) -> Path:
        """The path of a blob (which may not exist). Read-only for callers: hardlink or stream
        from it, never write to it."""
        return self.blob_root / digest.hex

    def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).exists()

    def blob_size(self, digest: Digest) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is not in the store") from None

    def blob_writer(self, expected: Digest | None = None,
                    expected_size: int | None = None) -> BlobWriter:
        """A BlobWriter (context manager) that publishes on `commit()`."""
        return BlobWriter(self.tmp_root, self.blob_root, expected, expected_size)

    def put_blob(self, data: bytes, expected: Digest | None = None) -> Digest:
        """Store bytes; idempotent; atomic. Raises ImageError if `expected` does not match."""
        digest = Digest.of_bytes(data)
        if expected is not None and digest != expected:
            raise ImageError(f"blob digest mismatch: expected {expected}, got {digest}")
        if self.has_blob(digest):
            return digest
        with self.blob_writer() as w:
            w.write(data)
            return w.commit()

    def put_blob_stream(self, src: ReadStream, expected: Digest | None = None,
                        expected_size: int | None = None) -> Digest:
        """Stream a file object into the store (verified against `expected` if given)."""
        with self.blob_writer(expected, expected_size) as w:
            w.copy_from(src)
            return w.commit()

    def open_blob(self, digest: Digest) -> VerifiedReader:
        """Open a blob for streaming, verifying its digest at EOF."""
        try:
            return VerifiedReader(self.blob_path(digest), digest)
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is not in the store") from None

    def read_blob(self, digest: Digest, max_size: int = 64 << 20) -> bytes:
        """Read a small blob (manifest, config) whole, verified."""
        size = self.blob_size(digest)
        if size > max_size:
            raise ImageError(f"blob {digest} is {size} bytes, more than the {max_size} allowed "
                             "for a JSON document")
        with self.open_blob(digest) as r:
            return r.read()

    def blobs(self) -> Iterator[Digest]:
        for entry in os.scandir(self.blob_root):
            if len(entry.name) == 64:
                yield Digest(entry.name)

    # layers -----------------------------------------------------------------------------------
    def _layer_file(self, diff_id: Digest) -> Path:
        return self.layer_root / f"{diff_id.hex}.json"

    def get_layer(self, diff_id: Digest) -> LayerRecord | None:
        """The layer record for `diff_id`, keeping only variants whose blob is present."""
        try:
            rec = LayerRecord.from_json(json.loads(self._layer_file(diff_id).read_bytes()))
        except FileNotFoundError:
            return None
        present = {c: d for c, d in rec.variants.items() if self.has_blob(d.digest)}
        if not present:
            return None
        return LayerRecord(rec.diff_id, rec.size, present)

    def put_layer(self, rec: LayerRecord) -> LayerRecord:
        """Record (or extend with new variants) a layer; returns the merged record."""
        with self.lock("layers"):
            old = self.get_layer(rec.diff_id)
            variants = dict(old.variants) if old else {}
            variants.update(rec.variants)
            merged = LayerRecord(rec.diff_id, rec.size, variants)
            atomic_write(self._layer_file(rec.diff_id), canonical_json(merged.to_json()),
                         self.tmp_root)
        return merged

    def layers(self) -> Iterator[Digest]:
        for entry in os.scandir(self.layer_root):
            if entry.name.endswith(".json"):
                yield Digest(entry.name[:-5])

    # images -----------------------------------------------------------------------------------
    def _read_images(self) -> dict[str, str]:
        try:
            data = json.loads(self.images_file.read_bytes())
        except FileNotFoundError:
            return {}
        return dict(data.get("images", {}))

    def images(self) -> dict[str, Digest]:
        """All image records: normalised name (`docker.io/library/x:tag`) → manifest digest."""
        return {k: Digest.parse(v) for k, v in sorted(self._read_images().items())}

    def get_image(self, name: str) -> Digest | None:
        v = self._read_images().get(name)
        return Digest.parse(v) if v else None

    def set_image(self, name: str, manifest: Digest) -> None:
        """Point `name` at a manifest (or index) already in the store."""
        if not self.has_blob(manifest):
            raise ImageError(f"cannot tag {name}: manifest {manifest} is not in the store")
        with self.lock("images"):
            images = self._read_images()
            if images.get(name) == str(manifest):
                return  # unchanged: leave images.json (and its build stamps) alone
            images[name] = str(manifest)
            atomic_write(self.images_file, canonical_json({"images": images}), self.tmp_root)

    def remove_image(self, name: str) -> bool:
        """Remove an image record (not its blobs: `prune` collects those). True if it existed."""
        with self.lock("images"):
            images = self._read_images()
            if images.pop(name, None) is None:
                return False
            atomic_write(self.images_file, canonical_json({"images": images}), self.tmp_root)
            return True

    # cache ------------------------------------------------------------------------------------
    def _cache_file(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad cache key {key!r}")
        return self.cache_root / key[:2] / f"{key}.json"

    def get_cache(self, key: str) -> CacheRecord | None:
        """The cache record for `key`, or None (also None if its layer is no longer stored)."""
        try:
            rec = CacheRecord.from_json(json.loads(self._cache_file(key).read_bytes()))
        except FileNotFoundError:
            return None
        if rec.diff_id is not None and self.get_layer(rec.diff_id) is None:
            return None
        return rec

    def put_cache(self, rec: CacheRecord) -> None:
        path = self._cache_file(rec.key)
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, canonical_json(rec.to_json()), self.tmp_root)

    def put_stamps(self, key: str, data: bytes | None) -> None:
        """Write (None: remove) the build stamp file of request `key` (builder.buildstamp)."""
        self._cache_file(key)  # the same key rules as a cache record
        path = Path(stamp_file(self.root, key))
        if data is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, data, self.tmp_root)

    def cache_records(self) -> Iterator[CacheRecord]:
        for path in self.cache_root.glob("*/*.json"):
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                yield CacheRecord.from_json(json.loads(path.read_bytes()))

    # rootfs -----------------------------------------------------------------------------------
    def rootfs_path(self, key: str) -> Path:
        """Where the checkout named `key` lives (may not exist)."""
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad rootfs key {key!r}")
        return self.rootfs_root / key

    def has_rootfs(self, key: str) -> bool:
        return self.rootfs_path(key).is_dir()

    @contextlib.contextmanager
    def new_rootfs(self, key: str) -> Iterator[Path]:
        """Yield an empty temp dir to fill; on success it becomes `rootfs_path(key)` atomically
        (if another process won the race, theirs is kept and ours discarded). On an exception
        the temp dir is removed and nothing is published."""
        tmp = Path(tempfile.mkdtemp(prefix=f"rootfs-{key[:16]}-", dir=self.tmp_root))
        try:
            yield tmp
        except BaseException:
            _rmtree(tmp)
            raise
        try:
            os.rename(tmp, self.rootfs_path(key))
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            _rmtree(tmp)

    def remove_rootfs(self, key: str) -> None:
        _rmtree(self.rootfs_path(key))

    # temp and locks ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def temp_dir(self, prefix: str = "tmp-") -> Iterator[Path]:
        """A temp dir on the store's filesystem, removed afterwards."""
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp_root))
        try:
            yield tmp
        finally:
            _rmtree(tmp)

    @contextlib.contextmanager
    def lock(self, name: str, shared: bool = False, blocking: bool = True) -> Iterator[None]:
        """Hold the named flock(2) lock. Raises ImageError when `blocking` is False and busy."""
        fd = os.open(self.lock_root / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o644)
        try:
            op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, op | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                raise ImageError(f"the store at {self.root} is busy ({name} lock held)",
                                 hint="another pybuild is running; retry when it is done"
                                 ) from None
            yield
        finally:
            os.close(fd)

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        """Hold for the whole of a build (or any reader of store content): `prune` waits."""
        return self.lock("gc", shared=True)

    # garbage collection -----------------------------------------------------------------------
    def _reachable(self) -> tuple[set[Digest], set[Digest]]:
        """(blobs, layer diff_ids) reachable from image and cache records."""
        blobs: set[Digest] = set()
        diff_ids: set[Digest] = set()

        def walk(d: Digest) -> None:
            if d in blobs or not self.has_blob(d):
                return
            blobs.add(d)
            try:
                doc = parse_document(self.read_blob(d))
            except (ImageError, ValueError):
                return  # a config or a layer, or damaged: nothing more to reach from it
            if isinstance(doc, Index):
                for m in doc.manifests:
                    walk(m.digest)
                return
            blobs.add(doc.config.digest)
            blobs.update(layer.digest for layer in doc.layers)
            with contextlib.suppress(ImageError, ValueError, KeyError):
                cfg = ImageConfig.from_bytes(self.read_blob(doc.config.digest))
                diff_ids.update(cfg.diff_ids)

        for digest in self.images().values():
            walk(digest)
        for rec in self.cache_records():
            if rec.diff_id is not None:
                diff_ids.add(rec.diff_id)
            for b in rec.blobs:
                walk(b)
        for diff_id in diff_ids:
            layer = self.get_layer(diff_id)
            if layer is not None:
                blobs.update(d.digest for d in layer.variants.values())
        return blobs, diff_ids

    def prune(self, cache: bool = False, blocking: bool = True) -> PruneReport:
        """Delete everything no image (or, unless `cache`, no cache record) reaches: blobs,
        layer records, every rootfs checkout and stale temp files. Holds the GC lock
        exclusively, so it waits for (or, non-blocking, refuses during) in-flight builds."""
        with self.lock("gc", blocking=blocking):
            n_cache = 0
            if cache:
                for path in list(self.cache_root.glob("*/*.json")):
                    path.unlink()
                    n_cache += 1
                for path in list(self.cache_root.glob("*/*.stamps")):
                    path.unlink()
            keep_blobs, keep_layers = self._reachable()
            n_blobs = n_bytes = n_layers = n_rootfs = n_temp = 0
            for diff_id in list(self.layers()):
                if diff_id not in keep_layers:
                    self._layer_file(diff_id).unlink(missing_ok=True)
                    n_layers += 1
            for digest in list(self.blobs()):
                if digest not in keep_blobs:
                    path = self.blob_path(digest)
                    with contextlib.suppress(FileNotFoundError):
                        n_bytes += path.stat().st_size
                        path.unlink()
                        n_blobs += 1
            for entry in list(os.scandir(self.rootfs_root)):
                _rmtree(Path(entry.path))
                n_rootfs += 1
            # Nobody holds the GC lock shared, so no writer is alive: temp files are debris.
            for entry in list(os.scandir(self.tmp_root)):
                _rmtree(Path(entry.path))
                n_temp += 1
            return PruneReport(n_blobs, n_bytes, n_layers, n_rootfs, n_cache, n_temp)

    # stat memo --------------------------------------------------------------------------------
    def stat_memo(self) -> StatMemo:
        """The (path, stat stamp) → content fingerprint memo (DESIGN.md §3)."""
        return StatMemo(self.root / "statmemo.sqlite")


def _rmtree(path: Path) -> None:
    """Remove a tree we own, even if a build left read-only dirs in it."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return

    def onerror(func: Any, p: str, exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    shutil.rmtree(path, onerror=onerror)
