"""The layer applier: unpack a stack of layer tars into a directory, safely.

Contract: honours whiteouts and opaque markers of lower layers (image-spec layer.md) and
refuses, with an ImageError naming the layer and entry, absolute or `..` member names, any
path or link whose resolution would leave the root, device nodes when not root, giant
extended headers and truncated or corrupt input. Every path is resolved here, one component
at a time with O_NOFOLLOW directory fds (never tarfile.extractall). Symlinks met while
resolving a parent are followed *inside* the root (an absolute target is re-rooted, as
containerd does: Debian's `/var/run -> /run` must work); one that climbs out is refused.
Callers apply into scratch space (Store.new_rootfs) so a refused layer publishes nothing.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyzstd

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.changeset import (
    OPAQUE_MARKER,
    OVERLAY_XATTR_PREFIXES,
    WHITEOUT_PREFIX,
    check_relpath,
)
from builder.oci.compression import BLOCK, decompressed
from builder.store import ReadStream, Store

OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_META_HEADER = 1 << 20       # refuse PAX / GNU long-name headers bigger than 1 MiB


class GuardedTarInfo(tarfile.TarInfo):
    """Refuses giant PAX / GNU long-name headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        meta = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
        if self.type in meta and self.size > MAX_META_HEADER:
            raise HostileEntry(f"a {self.size}-byte extended header (limit {MAX_META_HEADER})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise HostileEntry("GNU sparse files are not supported in layers")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class HostileEntry(Exception):
    """An entry the applier refuses (or GuardedTarInfo refuses to read); the applier turns it
    into ImageError naming the layer."""


_MAX_SYMLINK_HOPS = 40


class _Applier:
    """Applies layers, one at a time (`begin` each), into one target directory."""

    def __init__(self, target: Path, is_root: bool, whiteouts: str = "apply") -> None:
        self.target = target
        self.overlay = whiteouts == "overlay"
        self.plain_archive = whiteouts == "none"
        self.name = ""
        self.is_root = is_root
        self.root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.written: set[str] = set()
        self.written_ancestors: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []
        # Unprivileged: a directory's final mode (say 0555) would lock us out of creating
        # its children (root has CAP_DAC_OVERRIDE), so directories stay u+rwx until the end
        # of the whole stack; see `finish_modes`.
        self.deferred_modes: dict[str, int] = {}

    def begin(self, name: str) -> None:
        """Start a layer: whiteouts and opaque markers only hide what came before it."""
        self.name = name
        self.written.clear()
        self.written_ancestors.clear()

    def close(self) -> None:
        os.close(self.root_fd)

    # path resolution ------------------------------------------------------------------------
    def resolve_dir(self, rel: str, create: bool) -> int | None:
        """An fd of directory `rel` inside the root, following symlinks only within the root.
        Creates missing directories (0755) when `create`; None when missing otherwise.
        Raises HostileEntry when resolution would leave the root."""
        todo = [c for c in rel.split("/") if c and c != "."] if rel else []
        stack: list[int] = []
        names: list[str] = []       # the resolved path, for recording deferred modes
        hops = 0
        cur = self.root_fd
        try:
            while todo:
                comp = todo.pop(0)
                if comp == "..":
                    if not stack:
                        raise HostileEntry(f"path {rel!r} resolves outside the root")
                    os.close(stack.pop())
                    names.pop()
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
                        raise HostileEntry(f"too many symlinks resolving {rel!r}")
                    link = os.readlink(comp, dir_fd=cur)
                    if link.startswith("/"):
                        while stack:
                            os.close(stack.pop())
                        names.clear()
                        cur = self.root_fd
                    todo = [c for c in link.split("/") if c and c != "."] + todo
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise HostileEntry(f"{rel!r}: a parent is not a directory")
                fd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=cur)
                stack.append(fd)
                names.append(comp)
                cur = fd
                if create and not self.is_root and st.st_mode & 0o700 != 0o700:
                    # A lower layer left it read-only (say 0555): open it up for our writes
                    # and restore the mode in finish_modes.
                    self.deferred_modes.setdefault("/".join(names), stat.S_IMODE(st.st_mode))
                    os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
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
            raise HostileEntry(str(e)) from None
        if not path:
            return  # the root directory entry itself
        parent, _, base = path.rpartition("/")
        if self.plain_archive:
            pass  # an ordinary archive (ADD): `.wh.` names are just file names
        elif base == OPAQUE_MARKER:
            fd = self.resolve_dir(parent, create=True)
            assert fd is not None
            try:
                if self.overlay:
                    os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
                else:
                    self._prune_unwritten(fd, parent)
            finally:
                os.close(fd)
            return
        elif base.startswith(WHITEOUT_PREFIX):
            victim = base[len(WHITEOUT_PREFIX):]
            if not victim or victim in (".", "..") or "/" in victim:
                raise HostileEntry(f"bad whiteout {base!r}")
            if self.overlay:
                self._overlay_whiteout(parent, victim)
                return
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

    def _overlay_whiteout(self, parent: str, victim: str) -> None:
        """Overlay form: a 0:0 character device where the deleted entry was
        (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories")."""
        if not self.is_root:
            raise HostileEntry("overlay whiteouts (0:0 character devices) need root")
        fd = self.resolve_dir(parent, create=True)
        assert fd is not None
        try:
            self._remove(fd, victim)
            os.mknod(victim, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=fd)
        finally:
            os.close(fd)
        self._mark_written(f"{parent}/{victim}" if parent else victim)

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
                        raise HostileEntry("archive is truncated inside this entry")
                    view = memoryview(block)
                    while view:  # write(2) may be partial
                        view = view[os.write(fd, view):]
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
                raise HostileEntry(f"hardlink target: {e}") from None
            tparent, _, tbase = target.rpartition("/")
            tfd = self.resolve_dir(tparent, create=False)
            if tfd is None or not tbase:
                raise HostileEntry(f"hardlink target {m.linkname!r} does not exist")
            try:
                try:
                    tst = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
                except FileNotFoundError:
                    raise HostileEntry(f"hardlink target {m.linkname!r} does not exist") from None
                if stat.S_ISDIR(tst.st_mode):
                    raise HostileEntry(f"hardlink target {m.linkname!r} is a directory")
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tfd)
        elif m.ischr() or m.isblk():
            if not self.is_root:
                raise HostileEntry("device nodes can only be created as root")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            self._meta_path(pfd, base, m)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
            self._meta_path(pfd, base, m)
        else:
            raise HostileEntry(f"unsupported tar entry type {m.type!r}")

    def _meta(self, fd: int, m: tarfile.TarInfo) -> None:
        """Ownership, then mode (chown clears setuid/setgid), then xattrs."""
        if self.is_root:
            os.fchown(fd, m.uid, m.gid)
        mode = m.mode & 0o7777
        if m.isdir() and not self.is_root:
            self.deferred_modes[check_relpath(m.name)] = mode
            mode |= 0o700
        os.fchmod(fd, mode)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name = key[len("SCHILY.xattr."):]
                if name.startswith(OVERLAY_XATTR_PREFIXES):
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
        self.dir_times.clear()

    def finish_modes(self) -> None:
        """Unprivileged only: give directories their real modes, deepest first."""
        for path in sorted(self.deferred_modes, key=lambda p: p.count("/"), reverse=True):
            try:
                fd = self.resolve_dir(path, create=False)
            except HostileEntry:
                continue
            if fd is not None:
                try:
                    st = os.fstat(fd)
                    os.fchmod(fd, self.deferred_modes[path])
                    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
                finally:
                    os.close(fd)
        self.deferred_modes.clear()


def apply_layer(stream: ReadStream, target: str | os.PathLike[str], *, name: str = "layer",
                is_root: bool | None = None, whiteouts: str = "apply") -> None:
    """Apply one layer (gzip, zstd or plain tar, detected) on top of `target`.

    `whiteouts="apply"` deletes what `.wh.` entries and opaque markers hide (a flattened
    rootfs). `whiteouts="overlay"` instead writes them in overlayfs' on-disk form — a 0:0
    character device per deleted path, `trusted.overlay.opaque=y` on opaque directories — so
    `target` (an empty dir) becomes an overlay lower directory for this one layer; root only.
    `whiteouts="none"` treats the tar as an ordinary archive (Dockerfile ADD
    auto-extraction): `.wh.` names are extracted as the files they are.

    Raises ImageError naming the layer and entry for hostile or corrupt input; the caller
    should apply into a scratch directory and discard it on error (Store.new_rootfs does).
    If `stream` has a `drain()` (a store VerifiedReader) it is drained at the end so the blob
    digest is verified even though tar stops reading at its end-of-archive marker.
    """
    if whiteouts not in ("apply", "overlay", "none"):
        raise ValueError(f"whiteouts must be 'apply', 'overlay' or 'none', not {whiteouts!r}")
    ap = _Applier(Path(target), is_root if is_root is not None else os.geteuid() == 0,
                  whiteouts)
    try:
        _apply_one(ap, stream, name)
        ap.finish_modes()
    finally:
        ap.close()


def _apply_one(ap: _Applier, stream: ReadStream, name: str) -> None:
    ap.begin(name)
    entry = ""
    try:
        with decompressed(stream) as plain:
            tf = tarfile.open(fileobj=plain, mode="r|", tarinfo=GuardedTarInfo,
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
    except HostileEntry as e:
        where = f" entry {entry!r}" if entry else ""
        raise ImageError(f"refusing layer {name}:{where}: {e}",
                         hint="the layer is malformed or hostile; nothing outside the "
                              "target directory was touched") from None
    except (tarfile.TarError, EOFError, zlib.error, pyzstd.ZstdError, OSError) as e:
        where = f" at entry {entry!r}" if entry else ""
        raise ImageError(f"cannot apply layer {name}{where}: {e}",
                         hint="the layer is truncated or corrupt") from None


def apply_layers(store: Store, diff_ids: Sequence[Digest],
                 target: str | os.PathLike[str], *, is_root: bool | None = None) -> None:
    """Unpack the stack `diff_ids` (base first) from the store into `target`."""
    ap = _Applier(Path(target), is_root if is_root is not None else os.geteuid() == 0)
    try:
        for i, diff_id in enumerate(diff_ids):
            rec = store.get_layer(diff_id)
            if rec is None:
                raise ImageError(f"layer {i} ({diff_id}) is not in the store")
            with store.open_blob(rec.best_for_reading().digest) as raw:
                _apply_one(ap, raw, f"{i} ({diff_id.short})")
        ap.finish_modes()
    finally:
        ap.close()
