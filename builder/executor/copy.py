"""COPY/ADD/WORKDIR file operations: build a staging tree holding exactly the entries the
step adds (and the parent directories leading to them, with the lower filesystem's metadata),
ready to be written as a layer and used as an overlay lower.

Semantics (Dockerfile reference, COPY/ADD; BuildKit's file op):
- A directory source copies its *contents*; a file source copies the file.
- Destination: a trailing `/` (or several sources, or a wildcard matching several) means
  "into this directory"; otherwise a file source becomes the destination path itself, unless
  the destination already is a directory in the image, then it goes inside it.
- Ownership: `--chown` (names resolved in the image's /etc/passwd and /etc/group; a user
  without a group uses the same number as gid), else 0:0 from the context and the original
  owner from another stage or image. `--chmod`: octal or symbolic (u+x,go-w …), applied to
  every copied file and directory. Permission bits and mtimes are preserved otherwise.
- Hardlinks between copied files stay hardlinks; symlinks are copied as symlinks (a source
  named directly is followed, as BuildKit does).
- ADD of a local tar archive (plain, gzip, bzip2, xz) extracts it into the destination through
  the store's safe applier (never tarfile.extractall).
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuildFailed
from builder.executor.rootfs import LayerView
from builder.oci.layers import apply_layer
from builder.sandbox.users import UserNotFound, resolve

_SYMBOLIC = re.compile(r"^([ugoa]*)([-+=])([rwxXst]*)$")


def parse_chmod(text: str) -> Callable[[int, bool], int]:
    """A function (old mode, is_dir) → new permission bits for a --chmod value (octal or
    symbolic, chmod(1) syntax). Raises ValueError for anything else."""
    if re.fullmatch(r"[0-7]{1,4}", text):
        value = int(text, 8)
        return lambda _mode, _is_dir: value
    clauses = []
    for part in text.split(","):
        m = _SYMBOLIC.match(part)
        if not m:
            raise ValueError(f"invalid chmod value {text!r}")
        clauses.append(m.groups())

    def apply(mode: int, is_dir: bool) -> int:
        mode &= 0o7777
        for who, op, perms in clauses:
            who = who or "a"
            if "a" in who:
                who = "ugo"
            bits = 0
            for p in perms:
                for w in who:
                    shift = {"u": 6, "g": 3, "o": 0}[w]
                    if p == "r":
                        bits |= 4 << shift
                    elif p == "w":
                        bits |= 2 << shift
                    elif p == "x" or (p == "X" and (is_dir or mode & 0o111)):
                        bits |= 1 << shift
                    elif p == "s" and w in "ug":
                        bits |= 0o4000 if w == "u" else 0o2000
                    elif p == "t":
                        bits |= 0o1000
            mask = 0
            for w in who:
                mask |= {"u": 0o4700, "g": 0o2070, "o": 0o1007}[w]
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~mask) | bits
        return mode

    return apply


def resolve_chown(spec: str, view: LayerView) -> tuple[int, int]:
    """uid, gid for a --chown value, names looked up in the view's /etc/passwd and /etc/group.
    `user` alone uses the user's number as gid too (Dockerfile reference, COPY --chown)."""
    user, sep, group = spec.partition(":")
    passwd = view.read_text("etc/passwd")
    groups = view.read_text("etc/group")
    try:
        uid = resolve(user, passwd, groups).uid
        gid = resolve(f"{uid}:{group}", passwd, groups).gid if sep and group else uid
    except UserNotFound as err:
        raise BuildFailed(f"--chown={spec}: {err}",
                          hint="create the user in an earlier RUN, or use numeric ids") from None
    return uid, gid


@dataclass(slots=True)
class CopyOptions:
    """How copied entries are owned and moded. `owner` None keeps the source's ids."""

    owner: tuple[int, int] | None = None
    chmod: Callable[[int, bool], int] | None = None
    unpack: bool = False


class Stager:
    """Builds the staging tree for one step over `view` (the step's lower filesystem)."""

    def __init__(self, staging: Path, view: LayerView) -> None:
        self.staging = staging
        self.view = view
        self._links: dict[tuple[int, int], Path] = {}

    # --- directories ---------------------------------------------------------------------
    def ensure_dir(self, rel: str, owner: tuple[int, int] | None = None,
                   mode: int = 0o755) -> str:
        """Make `rel` (resolved through the view's symlinks) a directory in the staging tree,
        parents first; existing directories keep the view's metadata, new ones get `mode`
        and `owner` (0:0 by default). Returns the resolved relative path."""
        resolved = self.view.resolve(rel)
        parts = [p for p in resolved.split("/") if p]
        cur = ""
        for i, comp in enumerate(parts):
            cur = f"{cur}/{comp}" if cur else comp
            target = self.staging / cur
            if target.is_dir() and not target.is_symlink():
                continue
            lower = self.view.lookup(cur)
            lst = os.lstat(lower) if lower is not None else None
            if lst is not None and stat.S_ISDIR(lst.st_mode):
                target.mkdir()
                os.chmod(target, stat.S_IMODE(lst.st_mode))
                os.lchown(target, lst.st_uid, lst.st_gid)
                os.utime(target, ns=(lst.st_atime_ns, lst.st_mtime_ns))
            else:
                if os.path.lexists(target):
                    os.unlink(target)
                target.mkdir()
                os.chmod(target, mode)
                last = i == len(parts) - 1
                uid, gid = owner if (owner is not None and last) else (0, 0)
                os.lchown(target, uid, gid)
        return resolved

    def dest_is_dir(self, rel: str) -> bool:
        target = self.staging / self.view.resolve(rel)
        return (target.is_dir() and not target.is_symlink()) or self.view.is_dir(rel)

    # --- entries -------------------------------------------------------------------------
    def copy_entry(self, src: str, dst_rel: str, opts: CopyOptions,
                   keep: Callable[[str, bool], bool] | None = None, rel: str = "",
                   follow: bool = False) -> None:
        """Copy one entry (file, dir, symlink, fifo) from host path `src` to `dst_rel` in the
        staging tree (a directory is copied recursively, merging with what is there).
        `keep(path below the source, is_dir)` filters what a directory copy takes
        (.dockerignore, --exclude); `follow` follows `src` itself if it is a symlink."""
        st = os.stat(src) if follow else os.lstat(src)
        dst = self.staging / dst_rel
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(dst) and not (dst.is_dir() and not dst.is_symlink()):
                os.unlink(dst)
            if not dst.exists():
                dst.mkdir()
            with os.scandir(src) as it:
                names = sorted(e.name for e in it)
            for name in names:
                crel = f"{rel}/{name}" if rel else name
                child = os.path.join(src, name)
                if keep is not None and not keep(crel, os.path.isdir(child)
                                                 and not os.path.islink(child)):
                    continue
                self.copy_entry(child, f"{dst_rel}/{name}", opts, keep, crel)
            self._meta(dst, st, opts, is_dir=True)
            return
        self._remove(dst)
        if stat.S_ISREG(st.st_mode):
            ino = (st.st_dev, st.st_ino)
            first = self._links.get(ino) if st.st_nlink > 1 else None
            if first is not None:
                os.link(first, dst)
                return
            _copy_file(src, dst)
            if st.st_nlink > 1:
                self._links[ino] = dst
            self._meta(dst, st, opts, is_dir=False)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            uid, gid = opts.owner if opts.owner is not None else (st.st_uid, st.st_gid)
            os.lchown(dst, uid, gid)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dst, stat.S_IMODE(st.st_mode))
            self._meta(dst, st, opts, is_dir=False)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            os.mknod(dst, st.st_mode, st.st_rdev)
            self._meta(dst, st, opts, is_dir=False)
        # sockets are skipped (they cannot be copied; BuildKit skips them too)

    def merge_layer_dir(self, src: Path, dst_rel: str, opts: CopyOptions) -> None:
        """Merge one overlay layer's directory `src` into `dst_rel` (call lowest layer first):
        whiteouts (char 0:0) delete what lower layers put there, opaque directories replace
        it; the directory's own metadata comes from the last (topmost) layer merged."""
        dst = self.staging / dst_rel
        if os.path.lexists(dst) and not (dst.is_dir() and not dst.is_symlink()):
            os.unlink(dst)
        dst.mkdir(exist_ok=True)
        with os.scandir(src) as it:
            names = sorted(e.name for e in it)
        for name in names:
            child = src / name
            st = os.lstat(child)
            crel = f"{dst_rel}/{name}" if dst_rel else name
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                self._remove(self.staging / crel)
            elif stat.S_ISDIR(st.st_mode):
                if _opaque(child):
                    self._remove(self.staging / crel)
                self.merge_layer_dir(child, crel, opts)
            else:
                self.copy_entry(str(child), crel, opts)
        self._meta(dst, os.lstat(src), opts, is_dir=True)

    def write_file(self, dst_rel: str, content: bytes, opts: CopyOptions,
                   mtime_ns: int) -> None:
        """A heredoc (inline) source: a new regular file, mode 0644 unless --chmod."""
        dst = self.staging / dst_rel
        self._remove(dst)
        dst.write_bytes(content)
        mode = opts.chmod(0o644, False) if opts.chmod else 0o644
        os.chmod(dst, mode)
        uid, gid = opts.owner if opts.owner is not None else (0, 0)
        os.lchown(dst, uid, gid)
        os.utime(dst, ns=(mtime_ns, mtime_ns))

    def extract(self, archive: str, dst_rel: str, name: str) -> None:
        """ADD auto-extraction of a local archive into directory `dst_rel`."""
        kind = archive_kind(archive)
        assert kind is not None
        target = self.staging / dst_rel
        with open(archive, "rb") as raw:
            stream = raw
            if kind == "bzip2":
                stream = bz2.BZ2File(raw)  # type: ignore[assignment]
            elif kind == "xz":
                stream = lzma.LZMAFile(raw)  # type: ignore[assignment]
            # An ordinary archive, not an image layer: `.wh.` names are extracted as the
            # files they are (Docker's ADD applies no whiteouts).
            apply_layer(stream, target, name=name, whiteouts="none")

    def _remove(self, dst: Path) -> None:
        if dst.is_dir() and not dst.is_symlink():
            import shutil

            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.unlink(dst)

    @staticmethod
    def _meta(dst: Path, st: os.stat_result, opts: CopyOptions, *, is_dir: bool) -> None:
        uid, gid = opts.owner if opts.owner is not None else (st.st_uid, st.st_gid)
        os.lchown(dst, uid, gid)
        mode = stat.S_IMODE(st.st_mode)
        if opts.chmod is not None:
            mode = opts.chmod(mode, is_dir)
        os.chmod(dst, mode)  # after chown: chown clears setuid/setgid bits
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _opaque(path: Path) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _copy_file(src: str, dst: Path) -> None:
    """Copy bytes with copy_file_range (in-kernel; reflinks on filesystems that can)."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except OSError:
            fin.seek(copied)
            fout.seek(copied)
            while block := fin.read(1 << 20):
                fout.write(block)


def archive_kind(path: str) -> str | None:
    """"tar", "gzip", "bzip2" or "xz" when `path` is an archive ADD unpacks, else None
    (BuildKit detects by content, never by file name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head[:2] == b"\x1f\x8b":
        kind = "gzip"
    elif head[:3] == b"BZh":
        kind = "bzip2"
    elif head[:6] == b"\xfd7zXZ\x00":
        kind = "xz"
    elif len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    else:
        return None
    # A compressed file is only an archive if it decompresses to a tar.
    try:
        opener = {"gzip": __import__("gzip").open, "bzip2": bz2.open, "xz": lzma.open}[kind]
        with opener(path, "rb") as z:
            inner = z.read(512)
    except (OSError, EOFError, lzma.LZMAError):
        return None
    return kind if len(inner) >= 262 and inner[257:262] == b"ustar" else None
