"""Layer tarballs: the change-set type, the deterministic layer writer, and the safe applier.

Change set (what the sandbox and COPY produce, what the writer consumes): an iterable of
`Change(path, kind, source)` where `path` is relative to the image root ("usr/bin/x", no
leading "/" or "./"), `kind` is add/modify/delete/opaque and `source` is the file on disk
whose lstat, content, link target and xattrs go into the layer. `changes_from_upperdir`
turns an overlayfs upperdir into one (char-device 0:0 whiteouts → DELETE, `overlay.opaque`
dirs → OPAQUE); `changes_from_tree` turns any directory into an all-ADD set. The writer
records only the paths it is given: callers include the parent directories they want in the
layer (an upperdir always has them).

Writer contract (OCI image-spec layer.md; DESIGN.md §4): entries sorted by path (bytewise),
PAX format, uname/gname empty, mtimes clamped to SOURCE_DATE_EPOCH when given, hardlinks by
inode within the layer, xattrs kept (overlay's own stripped), deletions as `.wh.<name>`,
opaque directories as `<dir>/.wh..wh..opq`. One streaming pass computes the diff_id
(sha256 of the tar) and the blob digest (sha256 of the compressed bytes); nothing holds a
whole layer in memory. The same change set gives byte-identical output for each compression.

Applier contract: unpacks into a directory, honouring whiteouts and opaque markers of lower
layers, and refuses (ImageError naming the layer and entry) absolute or `..` member names,
any path or link whose resolution would leave the root, and device nodes when not root.
Symlinks met while resolving a parent are followed *inside* the root (an absolute target is
re-rooted, as containerd does); one that climbs out with `..` is refused.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import os
import shutil
import stat
import struct
import tarfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyzstd

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.model import Compression, Descriptor
from builder.store import LayerRecord, ReadStream, Store

BLOCK = 1 << 20                 # compression block: fixed, so output never depends on timing
GZIP_LEVEL = 6                  # gzip/pigz default
ZSTD_LEVEL = 3                  # zstd CLI default
STORE_COMPRESSION = Compression.ZSTD
STORE_ZSTD_LEVEL = 1            # the store's fast form: a build never waits for gzip
THREADS = max(1, min(4, os.cpu_count() or 1))
MAX_META_HEADER = 1 << 20       # refuse PAX / GNU long-name headers bigger than 1 MiB
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


# --- the change set ----------------------------------------------------------------------------
class ChangeKind(StrEnum):
    ADD = "add"
    MODIFY = "modify"      # written exactly like ADD; kept distinct for reporting
    DELETE = "delete"      # → `.wh.<name>`
    OPAQUE = "opaque"      # a directory that hides all lower content → dir + `.wh..wh..opq`


@dataclass(frozen=True, slots=True)
class Change:
    """One filesystem change. `source` is required for every kind except DELETE."""

    path: str
    kind: ChangeKind
    source: str | None = None


def check_relpath(path: str) -> str:
    """Validate a layer-relative path; returns it without a leading './' or trailing '/'.
    Raises ValueError for '', absolute paths and '..' components."""
    p = path
    while p.startswith("./"):
        p = p[2:]
    p = p.rstrip("/")
    if not p or p == ".":
        return ""
    if p.startswith("/"):
        raise ValueError(f"absolute path {path!r}")
    parts = p.split("/")
    if any(c == ".." for c in parts):
        raise ValueError(f"path {path!r} contains '..'")
    return "/".join(c for c in parts if c not in ("", "."))


def changes_from_tree(root: str | os.PathLike[str]) -> Iterator[Change]:
    """Every entry under `root` (not root itself) as an ADD, in sorted order."""
    root = os.fspath(root)

    def walk(rel: str, full: str) -> Iterator[Change]:
        with os.scandir(full) as it:
            entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        for e in entries:
            r = f"{rel}{e.name}"
            yield Change(r, ChangeKind.ADD, e.path)
            if e.is_dir(follow_symlinks=False):
                yield from walk(r + "/", e.path)

    yield from walk("", root)


def _is_overlay_opaque(path: str) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        with contextlib.suppress(OSError):
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
    return False


def _is_overlay_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    # Kernels ≥ 6.7 may also use xattr whiteouts (an empty file with overlay.whiteout).
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        for name in ("trusted.overlay.whiteout", "user.overlay.whiteout"):
            with contextlib.suppress(OSError):
                os.getxattr(path, name, follow_symlinks=False)
                return True
    return False


def changes_from_upperdir(upper: str | os.PathLike[str]) -> Iterator[Change]:
    """Read an overlayfs upperdir as a change set (Documentation/filesystems/overlayfs.rst):
    a 0:0 character device is a deletion, a directory with `overlay.opaque=y` replaced the
    lower directory; everything else was added or modified."""
    root = os.fspath(upper)

    def walk(rel: str, full: str) -> Iterator[Change]:
        with os.scandir(full) as it:
            entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        for e in entries:
            r = f"{rel}{e.name}"
            st = e.stat(follow_symlinks=False)
            if _is_overlay_whiteout(e.path, st):
                yield Change(r, ChangeKind.DELETE)
            elif stat.S_ISDIR(st.st_mode):
                kind = ChangeKind.OPAQUE if _is_overlay_opaque(e.path) else ChangeKind.ADD
                yield Change(r, kind, e.path)
                yield from walk(r + "/", e.path)
            else:
                yield Change(r, ChangeKind.ADD, e.path)

    yield from walk("", root)


# --- compression -------------------------------------------------------------------------------
class _Out(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class _Compressor:
    """Compresses a stream in fixed BLOCK-sized pieces and writes to `out`, hashing what it
    writes. gzip: pigz-style parallel deflate (each block primed with the previous 32 KiB as
    a dictionary and ended with a sync flush, so the concatenation is one valid deflate
    stream); zstd: libzstd's own worker threads. zlib and libzstd release the GIL."""

    def __init__(self, out: _Out, compression: Compression, level: int | None,
                 threads: int = THREADS) -> None:
        self.out = out
        self.compression = compression
        self.hash = hashlib.sha256()
        self.size = 0
        self._buf = bytearray()
        self._threads = threads
        if compression is Compression.GZIP:
            self._level = GZIP_LEVEL if level is None else level
            self._crc = 0
            self._isize = 0
            self._prev_tail = b""
            self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
            self._pending: deque[Future[bytes] | bytes] = deque()
            # RFC 1952 header, fixed: no name, MTIME=0, XFL=0, OS=255 (unknown) → byte-stable.
            self._emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        elif compression is Compression.ZSTD:
            opts: dict[int, int] = {
                pyzstd.CParameter.compressionLevel: ZSTD_LEVEL if level is None else level,
                pyzstd.CParameter.checksumFlag: 1}
            # Always ≥ 1 worker: multi-threaded zstd output does not depend on the worker
            # count, so the bytes are the same on a 1-core and a 64-core machine (they would
            # differ from single-threaded mode, nbWorkers=0); see zstd.h ZSTD_c_nbWorkers.
            opts[pyzstd.CParameter.nbWorkers] = max(1, threads)
            self._zstd = pyzstd.ZstdCompressor(opts)

    def _emit(self, data: bytes) -> None:
        if data:
            self.hash.update(data)
            self.out.write(data)
            self.size += len(data)

    @staticmethod
    def _deflate(block: bytes, level: int, zdict: bytes) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY,
                             zdict) if zdict else zlib.compressobj(level, zlib.DEFLATED, -15)
        return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)

    def _block(self, block: bytes) -> None:
        if self.compression is Compression.NONE:
            self._emit(block)
        elif self.compression is Compression.ZSTD:
            self._emit(self._zstd.compress(block))
        else:
            self._crc = zlib.crc32(block, self._crc)
            self._isize += len(block)
            zdict, self._prev_tail = self._prev_tail, block[-32768:]
            if self._pool is None:
                self._emit(self._deflate(block, self._level, zdict))
                return
            self._pending.append(self._pool.submit(self._deflate, block, self._level, zdict))
            while len(self._pending) > 2 * self._threads:
                self._drain_one()

    def _drain_one(self) -> None:
        f = self._pending.popleft()
        self._emit(f.result() if isinstance(f, Future) else f)

    def write(self, data: bytes | memoryview) -> None:
        if self.compression is Compression.NONE:
            self._emit(bytes(data))
            return
        if not self._buf and len(data) == BLOCK:
            self._block(bytes(data))
            return
        self._buf += data
        while len(self._buf) >= BLOCK:
            self._block(bytes(self._buf[:BLOCK]))
            del self._buf[:BLOCK]

    def close(self) -> None:
        if self._buf:
            self._block(bytes(self._buf))
            self._buf.clear()
        if self.compression is Compression.ZSTD:
            self._emit(self._zstd.flush())
        elif self.compression is Compression.GZIP:
            while self._pending:
                self._drain_one()
            if self._pool is not None:
                self._pool.shutdown()
            self._emit(b"\x03\x00")  # final empty fixed-Huffman block (BFINAL=1)
            self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._isize & 0xFFFFFFFF))

    def abort(self) -> None:
        if self.compression is Compression.GZIP and self._pool is not None:
            for f in self._pending:
                if isinstance(f, Future):
                    f.cancel()
            self._pool.shutdown(wait=True)


class _TarSink:
    """Hashes the uncompressed tar (diff_id) and feeds the compressor."""

    def __init__(self, comp: _Compressor) -> None:
        self.comp = comp
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        self.size += len(data)
        self.comp.write(data)


@dataclass(frozen=True, slots=True)
class LayerResult:
    """What `write_layer` produced."""

    diff_id: Digest
    digest: Digest
    size: int                 # compressed (blob) size
    uncompressed_size: int
    compression: Compression

    @property
    def media_type(self) -> str:
        return self.compression.oci_media_type

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


# --- the writer --------------------------------------------------------------------------------
def _sort_key(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _xattrs(source: str) -> dict[str, str]:
    try:
        names = os.listxattr(source, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, str] = {}
    for name in sorted(names):
        if name.startswith(_OVERLAY_XATTR_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            value = os.getxattr(source, name, follow_symlinks=False)
            out[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return out


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def write_layer(changes: Iterable[Change], out: _Out,
                compression: Compression = Compression.GZIP, *,
                source_date_epoch: int | None = None, level: int | None = None,
                threads: int = THREADS) -> LayerResult:
    """Write the layer tar for `changes` to `out` (anything with `write(bytes)`).

    Deterministic: the output depends only on the changes' paths, kinds and on-disk content
    and metadata (plus `source_date_epoch`, which clamps mtimes), never on the order given,
    the time, or thread scheduling. Raises ImageError for an invalid change path.
    """
    comp = _Compressor(out, compression, level, threads)
    sink = _TarSink(comp)
    try:
        _write_entries(changes, sink, source_date_epoch)
        sink.write(b"\0" * 1024)  # end-of-archive: two zero blocks (POSIX ustar)
        comp.close()
    except BaseException:
        comp.abort()
        raise
    diff_id = Digest(sink.hash.hexdigest())
    digest = diff_id if compression is Compression.NONE else Digest(comp.hash.hexdigest())
    return LayerResult(diff_id, digest, comp.size, sink.size, compression)


def _entries(changes: Iterable[Change]) -> list[tuple[bytes, str, ChangeKind, str | None]]:
    entries: list[tuple[bytes, str, ChangeKind, str | None]] = []
    seen: set[str] = set()
    for ch in changes:
        try:
            path = check_relpath(ch.path)
        except ValueError as e:
            raise ImageError(f"invalid change path: {e}") from None
        if not path:
            continue
        if path in seen:
            raise ImageError(f"change set names {path!r} twice")
        seen.add(path)
        if ch.kind is ChangeKind.DELETE:
            parent, _, base = path.rpartition("/")
            wh = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else f"{WHITEOUT_PREFIX}{base}"
            entries.append((_sort_key(wh), wh, ch.kind, None))
            continue
        if ch.source is None:
            raise ImageError(f"change {path!r} ({ch.kind.value}) has no source file")
        entries.append((_sort_key(path), path, ch.kind, ch.source))
        if ch.kind is ChangeKind.OPAQUE:
            marker = f"{path}/{OPAQUE_MARKER}"
            entries.append((_sort_key(marker), marker, ChangeKind.OPAQUE, None))
    entries.sort(key=lambda e: e[0])
    return entries


def _write_entries(changes: Iterable[Change], sink: _TarSink, sde: int | None) -> None:
    links: dict[tuple[int, int], str] = {}
    fixed_mtime = 0 if sde is None else sde
    for _key, path, _kind, source in _entries(changes):
        if source is None:
            # A whiteout or opaque marker: an empty regular file (image-spec layer.md).
            info = tarfile.TarInfo(path)
            info.mtime = fixed_mtime
            info.mode = 0
            info.uname = info.gname = ""
            sink.write(_header(info))
            continue
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise ImageError(f"layer source {source!r} for {path!r} vanished while writing "
                             "the layer") from None
        info = tarfile.TarInfo(path)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        mtime = int(st.st_mtime)
        info.mtime = mtime if sde is None else min(mtime, sde)
        info.pax_headers = _xattrs(source)
        data_source: str | None = None
        mode = st.st_mode
        if stat.S_ISREG(mode):
            ino = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and ino in links:
                info.type = tarfile.LNKTYPE
                info.linkname = links[ino]
            else:
                if st.st_nlink > 1:
                    links[ino] = path
                info.type = tarfile.REGTYPE
                info.size = st.st_size
                data_source = source
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            info.name = path + "/"
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(source)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            continue  # sockets cannot be represented in tar (GNU tar skips them too)
        sink.write(_header(info))
        if data_source is not None:
            _copy_file(data_source, info.size, sink, path)


def _copy_file(source: str, size: int, sink: _TarSink, path: str) -> None:
    remaining = size
    with open(source, "rb", buffering=0) as f:
        while remaining > 0:
            block = f.read(min(BLOCK, remaining))
            if not block:
                raise ImageError(f"{path!r} shrank while the layer was being written")
            sink.write(block)
            remaining -= len(block)
    pad = -size % tarfile.BLOCKSIZE
    if pad:
        sink.write(b"\0" * pad)


# --- the store's side: commit, convert, read ---------------------------------------------------
def commit_layer(store: Store, changes: Iterable[Change], *,
                 source_date_epoch: int | None = None) -> LayerRecord:
    """Write a layer straight into the store in its fast form (zstd, low level); atomic.
    Returns the (possibly merged) LayerRecord; an identical layer is stored once."""
    with store.blob_writer() as w:
        res = write_layer(changes, w, STORE_COMPRESSION, source_date_epoch=source_date_epoch,
                          level=STORE_ZSTD_LEVEL)
        w.commit()
    return store.put_layer(LayerRecord(res.diff_id, res.uncompressed_size,
                                       {res.compression: res.descriptor}))


def store_layer_blob(store: Store, blob: Digest, media_type: str) -> LayerRecord:
    """Record a layer blob already in the store (loaded or pulled), computing its diff_id by
    decompressing it once. Raises ImageError if the blob is not a readable layer."""
    comp = Compression.of_media_type(media_type)
    h = hashlib.sha256()
    size = 0
    with store.open_blob(blob) as raw:
        try:
            with decompressed(raw) as plain:
                while block := plain.read(BLOCK):
                    h.update(block)
                    size += len(block)
        except (OSError, EOFError, zlib.error, pyzstd.ZstdError) as e:
            raise ImageError(f"layer {blob} is not a valid {comp.value} stream: {e}") from None
        raw.drain()
    desc = Descriptor(media_type, blob, store.blob_size(blob))
    return store.put_layer(LayerRecord(Digest(h.hexdigest()), size, {comp: desc}))


def ensure_variant(store: Store, diff_id: Digest, compression: Compression, *,
                   level: int | None = None) -> Descriptor:
    """The layer `diff_id` as a blob with `compression`, creating and remembering it if it is
    not stored yet (so exporting the same image twice compresses once). The conversion is
    verified: its uncompressed stream must hash to `diff_id`."""
    rec = store.get_layer(diff_id)
    if rec is None:
        raise ImageError(f"layer {diff_id} is not in the store")
    if compression in rec.variants:
        return rec.variants[compression]
    src = rec.best_for_reading()
    with store.blob_writer() as w:
        comp = _Compressor(w, compression, level)
        h = hashlib.sha256()
        try:
            with store.open_blob(src.digest) as raw, decompressed(raw) as plain:
                while block := plain.read(BLOCK):
                    h.update(block)
                    comp.write(block)
                raw.drain()
            comp.close()
        except BaseException:
            comp.abort()
            raise
        if h.hexdigest() != diff_id.hex:
            raise ImageError(f"layer blob {src.digest} does not decompress to {diff_id}")
        digest = w.commit()
    desc = Descriptor(compression.oci_media_type, digest, w.size)
    store.put_layer(LayerRecord(diff_id, rec.size, {compression: desc}))
    return desc


@contextlib.contextmanager
def decompressed(raw: ReadStream) -> Iterator[BinaryIO]:
    """A read stream of the uncompressed tar, detecting gzip / zstd / plain by magic."""
    head = raw.read(4)
    src: BinaryIO = _Prefixed(head, raw)  # type: ignore[assignment]
    if head[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=src, mode="rb") as g:
            yield g  # type: ignore[misc]
    elif head == b"\x28\xb5\x2f\xfd":
        with pyzstd.ZstdFile(src, "rb") as z:
            yield z  # type: ignore[misc]
    else:
        yield src


class _Prefixed(io.RawIOBase):
    """A stream that first returns `head` then reads from `rest`."""

    def __init__(self, head: bytes, rest: ReadStream) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = len(b)
        if self._head:
            k = min(n, len(self._head))
            b[:k] = self._head[:k]
            self._head = self._head[k:]
            return k
        data = self._rest.read(n)
        b[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)


# --- the applier -------------------------------------------------------------------------------
class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses giant PAX / GNU long-name headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        meta = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
        if self.type in meta and self.size > MAX_META_HEADER:
            raise _Hostile(f"a {self.size}-byte extended header (limit {MAX_META_HEADER})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _Hostile("GNU sparse files are not supported in layers")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _Hostile(Exception):
    """An entry the applier refuses; turned into ImageError naming the layer."""


_MAX_SYMLINK_HOPS = 40


class _Applier:
    def __init__(self, target: Path, name: str, is_root: bool) -> None:
        self.target = target
        self.name = name
        self.is_root = is_root
        self.root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.written: set[str] = set()
        self.written_ancestors: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []

    def close(self) -> None:
        os.close(self.root_fd)

    # path resolution ------------------------------------------------------------------------
    def resolve_dir(self, rel: str, create: bool) -> int | None:
        """An fd of directory `rel` inside the root, following symlinks only within the root.
        Creates missing directories (0755) when `create`; None when missing otherwise.
        Raises _Hostile when resolution would leave the root."""
        todo = [c for c in rel.split("/") if c and c != "."] if rel else []
        stack: list[int] = []
        hops = 0
        cur = self.root_fd
        try:
            while todo:
                comp = todo.pop(0)
                if comp == "..":
                    if not stack:
                        raise _Hostile(f"path {rel!r} resolves outside the root")
                    os.close(stack.pop())
                    cur = stack[-1] if stack else self.root_fd
                    continue
                try:
                    st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(comp, 0o755, dir_fd=cur)
                    st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > _MAX_SYMLINK_HOPS:
                        raise _Hostile(f"too many symlinks resolving {rel!r}")
                    link = os.readlink(comp, dir_fd=cur)
                    if link.startswith("/"):
                        while stack:
                            os.close(stack.pop())
                        cur = self.root_fd
                    todo = [c for c in link.split("/") if c and c != "."] + todo
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise _Hostile(f"{rel!r}: a parent is not a directory")
                fd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=cur)
                stack.append(fd)
                cur = fd
            return os.dup(cur)
        finally:
            for fd in stack:
                os.close(fd)

    # removal --------------------------------------------------------------------------------
    @staticmethod
    def _remove(parent_fd: int, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            os.unlink(name, dir_fd=parent_fd)

    def _prune_unwritten(self, dir_fd: int, rel: str) -> None:
        """Opaque: remove everything in `rel` not written by this layer (recursively)."""
        for child in os.listdir(dir_fd):
            crel = f"{rel}/{child}" if rel else child
            if crel in self.written_ancestors:
                sub = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                              dir_fd=dir_fd)
                try:
                    self._prune_unwritten(sub, crel)
                finally:
                    os.close(sub)
            elif crel not in self.written:
                self._remove(dir_fd, child)

    def _mark_written(self, path: str) -> None:
        self.written.add(path)
        parent = path
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if parent in self.written_ancestors:
                break
            self.written_ancestors.add(parent)

    # entries ----------------------------------------------------------------------------------
    def apply(self, member: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        try:
            path = check_relpath(member.name)
        except ValueError as e:
            raise _Hostile(str(e)) from None
        if not path:
            return  # the root directory entry itself
        parent, _, base = path.rpartition("/")
        if base == OPAQUE_MARKER:
            fd = self.resolve_dir(parent, create=True)
            assert fd is not None
            try:
                self._prune_unwritten(fd, parent)
            finally:
                os.close(fd)
            return
        if base.startswith(WHITEOUT_PREFIX):
            victim = base[len(WHITEOUT_PREFIX):]
            if not victim or victim in (".", ".."):
                raise _Hostile(f"bad whiteout {base!r}")
            fd = self.resolve_dir(parent, create=False)
            if fd is None:
                return
            try:
                if (f"{parent}/{victim}" if parent else victim) not in self.written:
                    self._remove(fd, victim)
            finally:
                os.close(fd)
            return
        pfd = self.resolve_dir(parent, create=True)
        assert pfd is not None
        try:
            self._create(pfd, base, path, member, tf)
        finally:
            os.close(pfd)
        self._mark_written(path)

    def _create(self, pfd: int, base: str, path: str, m: tarfile.TarInfo,
                tf: tarfile.TarFile) -> None:
        try:
            existing: os.stat_result | None = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                if existing is not None:
                    os.unlink(base, dir_fd=pfd)
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=pfd)
            try:
                self._meta(fd, m)
            finally:
                os.close(fd)
            self.dir_times.append((path, int(m.mtime * 1e9)))
            return
        if existing is not None:
            self._remove(pfd, base)
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                assert src is not None
                remaining = m.size
                while remaining:
                    block = src.read(min(BLOCK, remaining))
                    if not block:
                        raise _Hostile("archive is truncated inside this entry")
                    os.write(fd, block)
                    remaining -= len(block)
                self._meta(fd, m)
                os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            if self.is_root:
                os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            try:
                target = check_relpath(m.linkname)
            except ValueError as e:
                raise _Hostile(f"hardlink target: {e}") from None
            tparent, _, tbase = target.rpartition("/")
            tfd = self.resolve_dir(tparent, create=False)
            if tfd is None or not tbase:
                raise _Hostile(f"hardlink target {m.linkname!r} does not exist")
            try:
                try:
                    tst = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
                except FileNotFoundError:
                    raise _Hostile(f"hardlink target {m.linkname!r} does not exist") from None
                if stat.S_ISDIR(tst.st_mode):
                    raise _Hostile(f"hardlink target {m.linkname!r} is a directory")
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tfd)
        elif m.ischr() or m.isblk():
            if not self.is_root:
                raise _Hostile("device nodes can only be created as root")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            self._meta_path(pfd, base, m)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
            self._meta_path(pfd, base, m)
        else:
            raise _Hostile(f"unsupported tar entry type {m.type!r}")

    def _meta(self, fd: int, m: tarfile.TarInfo) -> None:
        """Ownership, then mode (chown clears setuid/setgid), then xattrs."""
        if self.is_root:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr."):]
                if name.startswith(_OVERLAY_XATTR_PREFIXES):
                    continue
                try:
                    os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM) or self.is_root and \
                            e.errno == errno.EPERM and name.startswith("security."):
                        raise

    def _meta_path(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes last: creating children changed them."""
        for path, ns in reversed(self.dir_times):
            fd = self.resolve_dir(path, create=False)
            if fd is not None:
                try:
                    os.utime(fd, ns=(ns, ns))
                finally:
                    os.close(fd)


def apply_layer(stream: ReadStream, target: str | os.PathLike[str], *, name: str = "layer",
                is_root: bool | None = None) -> None:
    """Apply one layer (gzip, zstd or plain tar, detected) on top of `target`.

    Raises ImageError naming the layer and entry for hostile or corrupt input; the caller
    should apply into a scratch directory and discard it on error (Store.new_rootfs does).
    If `stream` has a `drain()` (a store VerifiedReader) it is drained at the end so the blob
    digest is verified even though tar stops reading at its end-of-archive marker.
    """
    root = is_root if is_root is not None else os.geteuid() == 0
    ap = _Applier(Path(target), name, root)
    entry = ""
    try:
        with decompressed(stream) as plain:
            tf = tarfile.open(fileobj=plain, mode="r|", tarinfo=_GuardedTarInfo,
                              encoding="utf-8", errors="surrogateescape")
            for member in tf:
                entry = member.name
                ap.apply(member, tf)
            entry = ""
            while plain.read(BLOCK):
                pass
        drain = getattr(stream, "drain", None)
        if drain is not None:
            drain()
        ap.finish()
    except _Hostile as e:
        where = f" entry {entry!r}" if entry else ""
        raise ImageError(f"refusing layer {name}:{where}: {e}",
                         hint="the layer is malformed or hostile; nothing outside the "
                              "target directory was touched") from None
    except (tarfile.TarError, EOFError, zlib.error, pyzstd.ZstdError, OSError) as e:
        where = f" at entry {entry!r}" if entry else ""
        raise ImageError(f"cannot apply layer {name}{where}: {e}",
                         hint="the layer is truncated or corrupt") from None
    finally:
        ap.close()


def apply_layers(store: Store, diff_ids: Sequence[Digest],
                 target: str | os.PathLike[str], *, is_root: bool | None = None) -> None:
    """Unpack the stack `diff_ids` (base first) from the store into `target`."""
    for i, diff_id in enumerate(diff_ids):
        rec = store.get_layer(diff_id)
        if rec is None:
            raise ImageError(f"layer {i} ({diff_id}) is not in the store")
        desc = rec.best_for_reading()
        with store.open_blob(desc.digest) as raw:
            apply_layer(raw, target, name=f"{i} ({diff_id.short})", is_root=is_root)


@contextlib.contextmanager
def open_uncompressed(store: Store, diff_id: Digest) -> Iterator[BinaryIO]:
    """Stream the uncompressed tar of layer `diff_id` (size: LayerRecord.size)."""
    rec = store.get_layer(diff_id)
    if rec is None:
        raise ImageError(f"layer {diff_id} is not in the store")
    with store.open_blob(rec.best_for_reading().digest) as raw, decompressed(raw) as plain:
        yield plain
