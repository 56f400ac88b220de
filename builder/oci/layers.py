"""Layer tarballs: the deterministic layer writer and the store's layer forms.

Writer contract (OCI image-spec layer.md; DESIGN.md §4): from a change set
(`builder.oci.changeset`), entries sorted by path (bytewise), POSIX PAX format, uname/gname
empty, mtimes whole seconds clamped to SOURCE_DATE_EPOCH when given, hardlinks by inode
within the layer, xattrs kept (overlay's own stripped), deletions as `.wh.<name>`, opaque
directories as `<dir>/.wh..wh..opq`. One streaming pass computes the diff_id (sha256 of the
tar) and the blob digest (sha256 of the compressed bytes); memory is bounded by a few buffers.
The same change set gives byte-identical output for each compression, whatever the thread
count, time or directory. Tar headers are encoded here (not by tarfile, whose output has
changed between Python releases) so the bytes depend on nothing but the changes.

This module also re-exports the change-set types and the applier, so `builder.oci.layers`
is the one import for layer work.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyzstd

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.apply import apply_layer, apply_layers
from builder.oci.changeset import (
    OPAQUE_MARKER,
    OVERLAY_XATTR_PREFIXES,
    WHITEOUT_PREFIX,
    Change,
    ChangeKind,
    IdMapping,
    changes_from_tree,
    changes_from_upperdir,
    check_relpath,
)
from builder.oci.compression import (
    BLOCK,
    THREADS,
    BlockSink,
    Compressor,
    Out,
    decompressed,
)
from builder.oci.model import Compression, Descriptor
from builder.store import LayerRecord, Store

__all__ = [
    "OPAQUE_MARKER", "WHITEOUT_PREFIX", "Change", "ChangeKind", "IdMapping", "LayerResult",
    "apply_layer",
    "apply_layers", "changes_from_tree", "changes_from_upperdir", "check_relpath",
    "commit_layer", "decompressed", "ensure_variant", "open_uncompressed", "store_layer_blob",
    "write_layer",
]

STORE_COMPRESSION = Compression.ZSTD
STORE_ZSTD_LEVEL = 1            # the store's fast form: a build never waits for gzip


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


# --- tar headers (POSIX.1-2001 ustar + pax) ----------------------------------------------------
REGTYPE, LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE = b"0", b"1", b"2", b"3", b"4", \
    b"5", b"6"
_PAX_NAME = b"././@PaxHeader"   # what star and Python's tarfile write


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def _fits(n: int, width: int) -> bool:
    return 0 <= n < 8 ** (width - 1)


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
           linkname: bytes = b"", devmajor: int = 0, devminor: int = 0,
           device: bool = False) -> bytes:
    h = b"".join((
        name[:100].ljust(100, b"\0"),
        _octal(mode, 8), _octal(uid, 8), _octal(gid, 8), _octal(size, 12), _octal(mtime, 12),
        b"        ", typeflag, linkname[:100].ljust(100, b"\0"),
        b"ustar\x0000",
        b"\0" * 64,                                            # uname, gname: empty
        _octal(devmajor, 8) if device else b"\0" * 8,
        _octal(devminor, 8) if device else b"\0" * 8,
        b"\0" * 167,                                           # prefix (unused) + padding
    ))
    chksum = sum(h)
    return h[:148] + b"%06o\0 " % chksum + h[156:]


def _pax_record(key: bytes, value: bytes) -> bytes:
    # "%d %s=%s\n" where the length counts itself (POSIX pax "extended header records").
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _header(path: str, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
            linkname: str = "", devmajor: int = 0, devminor: int = 0,
            xattrs: dict[str, bytes] | None = None) -> bytes:
    """One entry's header(s): a pax extended header first when a field does not fit ustar
    (long/non-ASCII names, big ids/sizes/times) or xattrs are present."""
    name_b = path.encode("utf-8", "surrogateescape")
    link_b = linkname.encode("utf-8", "surrogateescape")
    pax: dict[bytes, bytes] = {}
    if len(name_b) > 100 or not name_b.isascii():
        pax[b"path"] = name_b
    if len(link_b) > 100 or not link_b.isascii():
        pax[b"linkpath"] = link_b
    for key, value, width in ((b"uid", uid, 8), (b"gid", gid, 8), (b"size", size, 12),
                              (b"mtime", mtime, 12)):
        if not _fits(value, width):
            pax[key] = str(value).encode()
    for k, v in (xattrs or {}).items():
        pax[b"SCHILY.xattr." + k.encode("utf-8", "surrogateescape")] = v
    main = _ustar(name_b, mode, uid if _fits(uid, 8) else 0, gid if _fits(gid, 8) else 0,
                  size if _fits(size, 12) else 0, mtime if _fits(mtime, 12) else 0, typeflag,
                  link_b, devmajor, devminor, typeflag in (CHRTYPE, BLKTYPE))
    if not pax:
        return main
    records = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
    ext = _ustar(_PAX_NAME, 0o644, 0, 0, len(records), 0, b"x")
    return ext + records + b"\0" * (-len(records) % 512) + main


# --- the writer --------------------------------------------------------------------------------
def _sort_key(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _xattrs(source: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(source, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for name in sorted(names):
        if name.startswith(OVERLAY_XATTR_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            out[name] = os.getxattr(source, name, follow_symlinks=False)
    return out


def write_layer(changes: Iterable[Change], out: Out,
                compression: Compression = Compression.GZIP, *,
                source_date_epoch: int | None = None, level: int | None = None,
                threads: int = THREADS, hash_output: bool = True,
                id_map: IdMapping | None = None) -> LayerResult:
    """Write the layer tar for `changes` to `out` (anything with `write(bytes)`).

    Deterministic: the output depends only on the changes' paths, kinds and on-disk content
    and metadata (plus `source_date_epoch`, which clamps mtimes), never on the order given,
    the time, or thread scheduling. With `hash_output=False` the returned `digest` is not
    computed (the caller's sink hashes; see `commit_layer`). Owners: a change's own
    `id_map`, else `id_map` here, translates on-disk uid/gid to the recorded ones (rootless
    sandboxes; see `IdMapping`); without either they are recorded as lstat reports them.
    Raises ImageError for an
    invalid change path or a source that vanishes or shrinks while being written.
    """
    comp = Compressor(out, compression, level, threads, hash_output)
    sink = BlockSink(comp)
    try:
        _write_entries(changes, sink, source_date_epoch, id_map)
        sink.write(b"\0" * 1024)  # end of archive: two zero blocks
        sink.close()
    except BaseException:
        sink.abort()
        comp.abort()
        raise
    diff_id = Digest(sink.hash.hexdigest())
    if compression is Compression.NONE:
        digest = diff_id
    else:
        digest = Digest(comp.hash.hexdigest()) if comp.hash is not None else Digest("0" * 64)
    return LayerResult(diff_id, digest, comp.size, sink.size, compression)


_Entry = tuple[bytes, str, str | None, IdMapping | None]


def _entries(changes: Iterable[Change], id_map: IdMapping | None) -> list[_Entry]:
    """(sort key, tar path, source, id map) for every entry, whiteouts and markers included."""
    entries: list[_Entry] = []
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
            entries.append((_sort_key(wh), wh, None, None))
            continue
        if ch.source is None:
            raise ImageError(f"change {path!r} ({ch.kind.value}) has no source file")
        m = ch.id_map if ch.id_map is not None else id_map
        entries.append((_sort_key(path), path, ch.source, None if m is None or m.identity else m))
        if ch.kind is ChangeKind.OPAQUE:
            marker = f"{path}/{OPAQUE_MARKER}"
            entries.append((_sort_key(marker), marker, None, None))
    entries.sort(key=lambda e: e[0])
    return entries


def _write_entries(changes: Iterable[Change], sink: BlockSink, sde: int | None,
                   id_map: IdMapping | None) -> None:
    links: dict[tuple[int, int], str] = {}
    marker_mtime = 0 if sde is None else sde
    for _key, path, source, m in _entries(changes, id_map):
        if source is None:
            # A whiteout or opaque marker: an empty regular file (image-spec layer.md).
            sink.write(_header(path, 0, 0, 0, 0, marker_mtime, REGTYPE))
            continue
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise ImageError(f"layer source {source!r} for {path!r} vanished while writing "
                             "the layer") from None
        mode = st.st_mode
        mtime = int(st.st_mtime)
        if sde is not None:
            mtime = min(mtime, sde)
        perm = stat.S_IMODE(mode)
        xattrs = _xattrs(source)
        uid, gid = (st.st_uid, st.st_gid) if m is None else m.to_container(st.st_uid, st.st_gid)
        common = (perm, uid, gid)
        if stat.S_ISREG(mode):
            ino = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and ino in links:
                sink.write(_header(path, *common, 0, mtime, LNKTYPE, links[ino],
                                   xattrs=xattrs))
                continue
            if st.st_nlink > 1:
                links[ino] = path
            sink.write(_header(path, *common, st.st_size, mtime, REGTYPE, xattrs=xattrs))
            _copy_file(source, st.st_size, sink, path)
        elif stat.S_ISDIR(mode):
            sink.write(_header(path + "/", *common, 0, mtime, DIRTYPE, xattrs=xattrs))
        elif stat.S_ISLNK(mode):
            sink.write(_header(path, *common, 0, mtime, SYMTYPE, os.readlink(source),
                               xattrs=xattrs))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            sink.write(_header(path, *common, 0, mtime,
                               CHRTYPE if stat.S_ISCHR(mode) else BLKTYPE, "",
                               os.major(st.st_rdev), os.minor(st.st_rdev), xattrs))
        elif stat.S_ISFIFO(mode):
            sink.write(_header(path, *common, 0, mtime, FIFOTYPE, xattrs=xattrs))
        # sockets cannot be represented in tar (GNU tar skips them too)


def _copy_file(source: str, size: int, sink: BlockSink, path: str) -> None:
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        if sink.write_fd(fd, size) != size:
            raise ImageError(f"{path!r} shrank while the layer was being written")
    finally:
        os.close(fd)
    pad = -size % 512
    if pad:
        sink.write(b"\0" * pad)


# --- the store's side: commit, convert, read ---------------------------------------------------
def commit_layer(store: Store, changes: Iterable[Change], *,
                 source_date_epoch: int | None = None,
                 id_map: IdMapping | None = None) -> LayerRecord:
    """Write a layer straight into the store in its fast form (zstd, low level); atomic.
    Returns the (possibly merged) LayerRecord; an identical layer is stored once. `id_map`
    as for `write_layer`."""
    with store.blob_writer() as w:
        res = write_layer(changes, w, STORE_COMPRESSION, source_date_epoch=source_date_epoch,
                          level=STORE_ZSTD_LEVEL, hash_output=False, id_map=id_map)
        digest = w.commit()
    desc = Descriptor(STORE_COMPRESSION.oci_media_type, digest, w.size)
    return store.put_layer(LayerRecord(res.diff_id, res.uncompressed_size,
                                       {STORE_COMPRESSION: desc}))


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
        except (OSError, EOFError, pyzstd.ZstdError) as e:
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
        comp = Compressor(w, compression, level, hash_output=False)
        sink = BlockSink(comp)
        try:
            with store.open_blob(src.digest) as raw, decompressed(raw) as plain:
                while block := plain.read(BLOCK):
                    sink.write(block)
                raw.drain()
            sink.close()
        except BaseException:
            sink.abort()
            comp.abort()
            raise
        if sink.hash.hexdigest() != diff_id.hex:
            raise ImageError(f"layer blob {src.digest} does not decompress to {diff_id}")
        digest = w.commit()
    desc = Descriptor(compression.oci_media_type, digest, w.size)
    store.put_layer(LayerRecord(diff_id, rec.size, {compression: desc}))
    return desc


@contextlib.contextmanager
def open_uncompressed(store: Store, diff_id: Digest) -> Iterator[BinaryIO]:
    """Stream the uncompressed tar of layer `diff_id` (size: LayerRecord.size)."""
    rec = store.get_layer(diff_id)
    if rec is None:
        raise ImageError(f"layer {diff_id} is not in the store")
    with store.open_blob(rec.best_for_reading().digest) as raw, decompressed(raw) as plain:
        yield plain
