"""Assembling a rootfs without overlayfs (ladder rung 4, "copy"): materialise stacked layer
directories into one tree, record a baseline, and after the step turn the tree into an
overlay-format upper directory (only what changed, whiteouts, opaque markers), so every
strategy hands the same thing to the snapshot and to later steps as a lower layer.
Also the overlay on-disk format predicates the snapshot shares.

Safe to call in a forked child (pid 1 of a sandbox): stdlib and ctypes only, no imports.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import stat
from collections.abc import Iterable

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque")
WHITEOUT_XATTRS = ("trusted.overlay.whiteout", "user.overlay.whiteout")
BASELINE = "baseline.json"


def xattr(path: str, names: tuple[str, ...]) -> bytes | None:
    for name in names:
        try:
            return os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return None


def is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    # Kernels >= 6.7 may store whiteouts as xattrs on empty regular files (nested overlays).
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and xattr(path, WHITEOUT_XATTRS) is not None


def checkout(lowers: Iterable[str], dest: str) -> None:
    """Materialise the stacked `lowers` (lowest first, overlay-format whiteouts and opaque
    xattrs honoured) into the directory `dest`, preserving modes, owners (when permitted),
    times, symlinks and xattrs (overlay's own dropped)."""
    for lower in lowers:
        _overlay_copy(lower, dest)


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_BTIME = 0x800


def identity(path: str, st: os.stat_result) -> int:
    """An inode's identity across deletion and reuse of its number: the inode number plus,
    where the filesystem records it, the birth time (statx(2) stx_btime; ext4, xfs, btrfs,
    tmpfs). `rm -rf d; mkdir d` often reuses d's inode number, never its birth time."""
    if not stat.S_ISDIR(st.st_mode) or not hasattr(_libc, "statx"):
        return st.st_ino
    buf = ctypes.create_string_buffer(256)
    if _libc.statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, _STATX_BTIME, buf) != 0:
        return st.st_ino
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & _STATX_BTIME:
        return st.st_ino
    sec = int.from_bytes(buf.raw[0x50:0x58], "little", signed=True)
    nsec = int.from_bytes(buf.raw[0x58:0x5C], "little")
    return (st.st_ino << 64) ^ (sec * 1_000_000_000 + nsec)


def baseline(tree: str) -> dict[str, tuple[int, int]]:
    """What `tree_changes` compares against: relative path → (identity, ctime_ns)."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        rel_dir = os.path.relpath(dirpath, tree)
        for name in [*dirnames, *filenames]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            out[rel] = (identity(full, st), st.st_ctime_ns)
    return out


def record_baseline(tree: str, path: str) -> None:
    """Write `baseline(tree)` to `path` (JSON)."""
    save_baseline(baseline(tree), path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _overlay_copy(src: str, dst: str) -> None:
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        target = os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if is_whiteout(entry.path, st):
            _remove(target)
            continue
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(target) and (not os.path.isdir(target) or os.path.islink(target)
                                            or xattr(entry.path, OPAQUE_XATTRS) == b"y"):
                _remove(target)
            if not os.path.lexists(target):
                os.mkdir(target, 0o700)
            _overlay_copy(entry.path, target)
        else:
            _remove(target)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), target)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(entry.path, target, follow_symlinks=False)
            else:
                os.mknod(target, st.st_mode, st.st_rdev)
        _copy_meta(entry.path, target, st)


def _copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    try:
        os.lchown(dst, st.st_uid, st.st_gid)
    except OSError:
        pass  # unprivileged, or an id unmapped in this user namespace: the file stays ours
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            if not name.startswith(("trusted.overlay.", "user.overlay.")):
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                            follow_symlinks=False)
    except OSError:
        pass
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def save_baseline(baseline: dict[str, tuple[int, int]], path: str) -> None:
    with open(path, "w") as f:
        json.dump(baseline, f, separators=(",", ":"))


def load_baseline(path: str) -> dict[str, tuple[int, int]]:
    with open(path) as f:
        return {k: (v[0], v[1]) for k, v in json.load(f).items()}


def diff(tree: str, baseline: dict[str, tuple[int, int]]) -> list[tuple[str, str]]:
    """What changed in `tree` (a `checkout` the step then ran in) since `baseline`, as
    (relative path, "add" | "opaque" | "delete"), unsorted.

    An entry whose identity and ctime are unchanged is untouched (the kernel updates ctime
    on every write, chmod, chown and rename). A directory with a new identity (inode and
    birth time) was removed and recreated: opaque, and everything under it is added. A
    baseline path that is gone is a deletion (only the topmost one of a removed subtree)."""
    found: list[tuple[str, str]] = []
    present: set[str] = set()
    opaque: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tree):
        rel_dir = os.path.relpath(dirpath, tree)
        rel_dir = "" if rel_dir == "." else rel_dir
        in_opaque = any(rel_dir == o or rel_dir.startswith(o + "/") for o in opaque)
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(full)
            present.add(rel)
            before = baseline.get(rel)
            ident = identity(full, st)
            if before == (ident, st.st_ctime_ns) and not in_opaque:
                continue
            kind = "add"
            if stat.S_ISDIR(st.st_mode) and before is not None and before[0] != ident \
                    and not in_opaque:
                kind = "opaque"
                opaque.add(rel)
            found.append((rel, kind))
    for rel in set(baseline) - present:
        parent = rel.rpartition("/")[0]
        if parent and (parent not in present or parent in opaque):
            continue  # covered by the parent's deletion or opaque replacement
        found.append((rel, "delete"))
    return found


def to_overlay_upper(tree: str, baseline: dict[str, tuple[int, int]],
                     opaque_xattr: str) -> None:
    """Rewrite `tree` in place as the overlay upper directory the step would have produced:
    unchanged entries removed (directories kept where something below changed, as overlay's
    copy-up keeps them), deletions as 0:0 character devices, replaced directories marked with
    `opaque_xattr` = "y" (trusted.overlay.opaque as root, user.overlay.opaque in a user
    namespace, where creating a 0:0 whiteout is also allowed). Needs the privileges of the
    sandbox's root over `tree`."""
    changes = diff(tree, baseline)
    keep: set[str] = set()
    for rel, kind in changes:
        if kind != "delete":
            keep.add(rel)
        parent = rel.rpartition("/")[0]
        while parent and parent not in keep:
            keep.add(parent)
            parent = parent.rpartition("/")[0]
    for dirpath, dirnames, filenames in os.walk(tree, topdown=False):
        rel_dir = os.path.relpath(dirpath, tree)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in filenames:
            if (f"{rel_dir}/{name}" if rel_dir else name) not in keep:
                os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            if (f"{rel_dir}/{name}" if rel_dir else name) not in keep:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):  # os.walk lists symlinks to directories here
                    os.unlink(full)
                else:
                    os.rmdir(full)
    for rel, kind in changes:
        full = os.path.join(tree, rel)
        if kind == "delete":
            os.mknod(full, stat.S_IFCHR, os.makedev(0, 0))
        elif kind == "opaque":
            os.setxattr(full, opaque_xattr, b"y", follow_symlinks=False)
