"""The `type=local` cache backend (a CacheSource and CacheTarget, builder.cache.backend): an
OCI image layout directory (image-spec image-layout.md) holding cache artifacts, one
`index.json` entry per tag.

Writing is atomic and incremental: blobs go in first (each temp + fsync + rename, skipped when
a verified copy is already there), `index.json` is swapped last by one rename, and only then
are blobs that no index entry reaches any more deleted. A crash at any point leaves the
previous export readable. An flock on the directory serialises two exporters.

Reading trusts nothing: names are digests we parse ourselves (never a path from the
directory's JSON), blobs must be regular files (no symlink, FIFO or device is opened), sizes
are bounded, and every byte is hashed by the reader (the caller streams blobs through the
store's verifying BlobWriter).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from builder.cache.format import MAX_DOCUMENT, CacheDamaged
from builder.digest import Digest
from builder.oci.model import (
    ANNOTATION_REF_NAME,
    OCI_INDEX,
    OCI_LAYOUT_VERSION,
    Descriptor,
    canonical_json,
)
from builder.store import ReadStream, atomic_write, fsync_dir

CHUNK = 1 << 20


class LocalLayout:
    """An OCI layout directory used as a cache (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)
        self.blob_dir = self.root / "blobs" / "sha256"

    def __str__(self) -> str:
        return str(self.root)

    # --- reading -------------------------------------------------------------------------
    def _open(self, rel: Path) -> BinaryIO:
        """Open a regular file under the layout for reading, never following a symlink at the
        last component and never blocking on a FIFO."""
        try:
            fd = os.open(rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise CacheDamaged(f"{rel.relative_to(self.root)} is missing") from None
        except OSError as e:
            what = "a symlink" if e.errno == errno.ELOOP else e.strerror
            raise CacheDamaged(f"cannot open {rel.relative_to(self.root)}: {what}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CacheDamaged(f"{rel.relative_to(self.root)} is not a regular file")
        return os.fdopen(fd, "rb")

    def resolve(self, tag: str) -> Descriptor:
        """The manifest descriptor tagged `tag` in index.json (CacheDamaged if none)."""
        if not self.root.is_dir():
            raise CacheDamaged("no such directory")
        with self._open(self.root / "index.json") as f:
            data = f.read(MAX_DOCUMENT + 1)
        if len(data) > MAX_DOCUMENT:
            raise CacheDamaged("index.json is too large")
        try:
            doc = json.loads(data)
            entries = [Descriptor.from_json(m) for m in doc["manifests"]]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CacheDamaged(f"index.json is malformed: {e}") from None
        except RecursionError:   # [[[[…: json's C scanner recurses once per level
            raise CacheDamaged("index.json is malformed: nested too deeply") from None
        for desc in entries:
            if desc.annotations.get(ANNOTATION_REF_NAME) == tag:
                if desc.size > MAX_DOCUMENT:
                    raise CacheDamaged(f"manifest of tag {tag!r} is too large")
                return desc
        raise CacheDamaged(f"index.json has no cache tagged {tag!r}")

    def get_manifest(self, tag: str) -> tuple[Descriptor, bytes]:
        """CacheSource: the manifest tagged `tag`, verified."""
        desc = self.resolve(tag)
        return desc, self.read_blob(desc)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """Raw (unverified) bytes of a blob: the caller verifies digest and size."""
        return self._open(self.blob_dir / desc.digest.hex)

    def read_blob(self, desc: Descriptor) -> bytes:
        """A JSON blob read whole and verified against its descriptor."""
        with self.open_blob(desc) as f:
            data = f.read(desc.size + 1)
        if len(data) != desc.size or Digest.of_bytes(data) != desc.digest:
            raise CacheDamaged(f"blob {desc.digest} does not match its digest or size")
        return data

    # --- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive flock on the directory (created) while exporting. `blobs` and
        `blobs/sha256` must be real directories: through a symlink (a hostile restored cache),
        the export would write elsewhere and its collection delete 64-hex files there."""
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.blob_dir.parent, self.blob_dir):
            if not stat.S_ISDIR(os.lstat(d).st_mode):
                raise CacheDamaged(f"{d.relative_to(self.root)} is a symlink, not a directory"
                                   if os.path.islink(d) else
                                   f"{d.relative_to(self.root)} is not a directory")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def has_blob(self, desc: Descriptor) -> bool:
        """True when a regular file of the right size and digest is there already (it is
        read, not rewritten: a damaged copy is replaced by `put_blob`)."""
        path = self.blob_dir / desc.digest.hex
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != desc.size:
            return False
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
        return h.hexdigest() == desc.digest.hex

    def put_blob(self, desc: Descriptor, opener: Callable[[], ReadStream]) -> None:
        """Write a blob atomically (temp + fsync + rename), verifying what was written."""
        dest = self.blob_dir / desc.digest.hex
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.blob_dir)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                src = opener()
                try:
                    while block := src.read(CHUNK):
                        h.update(block)
                        out.write(block)
                finally:
                    close = getattr(src, "close", None)
                    if close is not None:
                        close()
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != desc.digest.hex:
                raise CacheDamaged(f"blob {desc.digest}: the store's copy does not match")
            os.chmod(tmp, 0o644)
            os.rename(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_manifest(self, tag: str, desc: Descriptor, data: bytes) -> None:
        """CacheTarget: write the manifest blob (if absent), then swap the tag to it."""
        if not self.has_blob(desc):
            self.put_blob(desc, lambda: io.BytesIO(data))
        self.set_tag(tag, desc)

    def set_tag(self, tag: str, manifest: Descriptor) -> None:
        """Point `tag` at `manifest` (already written) by swapping index.json, then delete the
        blobs no entry reaches. Entries for other tags are kept (sorted, so the bytes are
        stable)."""
        fsync_dir(self.blob_dir)
        entries: list[Descriptor] = []
        gc = True
        try:
            entries = [e for e in _read_entries(self.root / "index.json")
                       if e.annotations.get(ANNOTATION_REF_NAME) != tag]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            gc = False  # an unreadable index: we cannot tell what else is in use; keep all
        entries.append(Descriptor(manifest.media_type, manifest.digest, manifest.size,
                                  {ANNOTATION_REF_NAME: tag}))
        entries.sort(key=lambda e: e.annotations.get(ANNOTATION_REF_NAME, ""))
        _publish(self.root / "oci-layout",
                 canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        _publish(self.root / "index.json", canonical_json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [e.to_json() for e in entries]}))
        if gc:
            self._collect(entries)

    def _collect(self, entries: list[Descriptor]) -> None:
        """Delete blobs (and stale temp files) that no index entry reaches. Entries that are
        not manifests we can read (another tool's image, say) disable collection."""
        keep: set[str] = set()
        for e in entries:
            keep.add(e.digest.hex)
            try:
                doc = json.loads(_read_regular(self.blob_dir / e.digest.hex))
                keep.add(Digest.parse(doc["config"]["digest"]).hex)
                keep.update(Digest.parse(d["digest"]).hex for d in doc.get("layers") or ())
                if "manifests" in doc:
                    return
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
                return
        for entry in os.scandir(self.blob_dir):
            if entry.name not in keep and (len(entry.name) == 64 or
                                           entry.name.startswith(".tmp-")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _publish(path: Path, data: bytes) -> None:
    """atomic_write, world-readable like the blobs (a CI cache is often restored by another
    user than the one that saved it); an unchanged file is left alone (incremental export:
    a CI cache step that compares files sees no change)."""
    with contextlib.suppress(OSError):
        if _read_regular(path) == data:
            return
    atomic_write(path, data)
    os.chmod(path, 0o644)


def _read_regular(path: Path) -> bytes:
    """A small file of the directory, read whole: OSError unless it is a regular file (not
    followed through a symlink, no blocking on a FIFO) of at most MAX_DOCUMENT bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = f.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise OSError(errno.EFBIG, "too large", str(path))
    return data


def _read_entries(index: Path) -> list[Descriptor]:
    try:
        doc = json.loads(_read_regular(index))
    except RecursionError:
        raise ValueError("index.json nests too deeply") from None
    return [Descriptor.from_json(m) for m in doc["manifests"]]
