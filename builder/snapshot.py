"""Turns a finished step's overlay upperdir into a ChangeSet: the input of the layer writer.

Overlay's on-disk format (Documentation/filesystems/overlayfs.rst) → OCI layer semantics
(image-spec layer.md "Whiteouts"):
  - a character device 0:0 (or a `*.overlay.whiteout` xattr) is a deletion → `.wh.<name>`;
  - a directory with `trusted.overlay.opaque` / `user.overlay.opaque` = "y" replaced whatever
    the lowers had there → `.wh..wh..opq` inside it;
  - overlay's own xattrs (`trusted.overlay.*`, `user.overlay.*`) are bookkeeping, never content;
  - mount-point stubs the sandbox created (ExecResult.stubs) are not the step's changes.

NOTE: the store's layer writer (builder/oci/layers.py, branch `store`) consumes this type; it
was not committed when this was written, so ChangeSet is defined here as the minimal contract.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")
_WHITEOUT = ("trusted.overlay.whiteout", "user.overlay.whiteout")


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a change set.

    `path` is relative to the rootfs, '/'-separated, no leading slash. `kind` "add" means the
    entry at `ChangeSet.root/path` (file, dir, symlink, fifo, device) is new or modified — read
    its metadata and content there; "delete" means the path was removed. `opaque` marks a
    directory that replaces the lower one entirely. `xattrs` are the entry's extended
    attributes with overlay's own stripped (sorted by name)."""

    path: str
    kind: Literal["add", "delete"]
    opaque: bool = False
    xattrs: tuple[tuple[str, bytes], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """All changes of one step, sorted by path bytes (parents before children)."""

    root: str
    changes: tuple[Change, ...]
    # Rootless sandboxes: how container ids map to the host ids stored in `root` (IdMap-like
    # (inside, outside, count) triples); empty = identity. Use `owner()` to map back.
    uid_map: tuple[tuple[int, int, int], ...] = ()
    gid_map: tuple[tuple[int, int, int], ...] = ()

    def owner(self, st: os.stat_result) -> tuple[int, int]:
        """(uid, gid) as the container saw them, for an lstat() of an entry under `root`."""
        return _unmap(st.st_uid, self.uid_map), _unmap(st.st_gid, self.gid_map)

    def source(self, change: Change) -> str:
        """Host path of an "add" entry's content."""
        return os.path.join(self.root, change.path)

    @property
    def paths(self) -> dict[str, Change]:
        return {c.path: c for c in self.changes}


def _unmap(host_id: int, id_map: tuple[tuple[int, int, int], ...]) -> int:
    if not id_map:
        return host_id
    for inside, outside, count in id_map:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return 65534  # the kernel's overflow id: not mapped into the sandbox


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def _is_whiteout(st: os.stat_result, xattrs: dict[str, bytes]) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return any(n in xattrs for n in _WHITEOUT)


def _same_dir_in_lowers(rel: str, st: os.stat_result, lowers: Iterable[str]) -> bool:
    for lower in reversed(tuple(lowers)):  # topmost layer decides
        try:
            lst = os.lstat(os.path.join(lower, rel))
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            return False
        return (stat.S_ISDIR(lst.st_mode) and lst.st_mode == st.st_mode
                and lst.st_uid == st.st_uid and lst.st_gid == st.st_gid)
    return False


def changes(upper: str, *, stubs: Iterable[str] = (), lowers: Iterable[str] = (),
            uid_map: Iterable[tuple[int, int, int]] = (),
            gid_map: Iterable[tuple[int, int, int]] = ()) -> ChangeSet:
    """Read `upper` (an overlay upperdir after the step's process exited) into a ChangeSet.

    `stubs` (from ExecResult.stubs) are dropped when still empty, and so are their ancestor
    directories that hold nothing else and match the lowers' metadata (pure copy-ups).
    `lowers` (lowest first) are consulted only for that check. `uid_map`/`gid_map` (from
    builder.sandbox.id_maps(), as (inside, outside, count)) are carried for `owner()`.
    Read-only; not atomic against a running process (call it after the step exited)."""
    found: dict[str, Change] = {}
    stats: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(full)
            xattrs = _xattrs(full)
            if _is_whiteout(st, xattrs):
                found[rel] = Change(rel, "delete")
                continue
            opaque = stat.S_ISDIR(st.st_mode) and any(xattrs.get(n) == b"y" for n in _OPAQUE)
            kept = tuple(sorted((k, v) for k, v in xattrs.items()
                                if not k.startswith(OVERLAY_XATTR_PREFIXES)))
            found[rel] = Change(rel, "add", opaque, kept)
            stats[rel] = st
    for stub in sorted(set(stubs), key=lambda p: p.count("/"), reverse=True):
        c = found.get(stub)
        if c is None or c.kind != "add" or c.opaque:
            continue
        st = stats[stub]
        empty = (stat.S_ISDIR(st.st_mode) and not any(p.startswith(stub + "/") for p in found)) \
            or (stat.S_ISREG(st.st_mode) and st.st_size == 0)
        if not empty:
            continue
        del found[stub]
        parent = stub.rpartition("/")[0]
        while parent and parent in found and parent not in stubs:
            pc = found[parent]
            if pc.kind != "add" or pc.opaque or pc.xattrs \
                    or any(p.startswith(parent + "/") for p in found) \
                    or not _same_dir_in_lowers(parent, stats[parent], lowers):
                break
            del found[parent]
            parent = parent.rpartition("/")[0]
    ordered = sorted(found.values(), key=lambda c: c.path.encode())
    umap = tuple((int(a), int(b), int(c)) for a, b, c in uid_map)
    gmap = tuple((int(a), int(b), int(c)) for a, b, c in gid_map)
    return ChangeSet(upper, tuple(ordered), umap, gmap)
