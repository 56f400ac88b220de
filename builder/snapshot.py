"""Turns a finished step's overlay upperdir into the change set the layer writer consumes
(`builder.oci.layers.Change`), minus the sandbox's own mount-point stubs.

Overlay's on-disk format (Documentation/filesystems/overlayfs.rst) → OCI layer semantics
(image-spec layer.md "Whiteouts"):
  - a character device 0:0 (or a `*.overlay.whiteout` xattr) is a deletion → DELETE;
  - a directory with `trusted.overlay.opaque` / `user.overlay.opaque` = "y" replaced whatever
    the lowers had there → OPAQUE;
  - overlay's own xattrs (`trusted.overlay.*`, `user.overlay.*`) are stripped by the writer;
  - mount-point stubs the sandbox created (ExecResult.stubs) are not the step's changes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from builder.oci.layers import Change, ChangeKind

_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")
_WHITEOUT = ("trusted.overlay.whiteout", "user.overlay.whiteout")


def _xattr(path: str, names: tuple[str, ...]) -> bytes | None:
    for name in names:
        try:
            return os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return None


def _is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    # Kernels >= 6.7 may store whiteouts as xattrs on empty regular files (nested overlays).
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and _xattr(path, _WHITEOUT) is not None


def _same_dir_in_lowers(rel: str, st: os.stat_result, lowers: tuple[str, ...]) -> bool:
    for lower in reversed(lowers):  # the topmost layer that has the path decides
        try:
            lst = os.lstat(os.path.join(lower, rel))
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            return False
        return (stat.S_ISDIR(lst.st_mode) and lst.st_mode == st.st_mode
                and lst.st_uid == st.st_uid and lst.st_gid == st.st_gid)
    return False


def changes(upper: str, *, stubs: Iterable[str] = (),
            lowers: Iterable[str] = ()) -> tuple[Change, ...]:
    """Read `upper` (an overlay upperdir after the step's process exited) as a change set,
    sorted by path bytes (parents before children), ready for `oci.layers.write_layer`.

    `stubs` (ExecResult.stubs) are dropped when still empty, and so are their ancestor
    directories that hold nothing else and match the lowers' mode and owner (pure copy-ups
    caused by creating the stub). `lowers` (lowest first) are read only for that check.
    Read-only; call it after the step exited."""
    found: dict[str, Change] = {}
    stats: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(full)
            if _is_whiteout(full, st):
                found[rel] = Change(rel, ChangeKind.DELETE)
                continue
            kind = ChangeKind.ADD
            if stat.S_ISDIR(st.st_mode) and _xattr(full, _OPAQUE) == b"y":
                kind = ChangeKind.OPAQUE
            found[rel] = Change(rel, kind, full)
            stats[rel] = st
    _drop_stubs(found, stats, set(stubs), tuple(lowers))
    return tuple(sorted(found.values(), key=lambda c: c.path.encode("utf-8", "surrogateescape")))


def _has_children(found: dict[str, Change], path: str) -> bool:
    prefix = path + "/"
    return any(p.startswith(prefix) for p in found)


def _drop_stubs(found: dict[str, Change], stats: dict[str, os.stat_result], stubs: set[str],
                lowers: tuple[str, ...]) -> None:
    for stub in sorted(stubs, key=lambda p: p.count("/"), reverse=True):  # deepest first
        c = found.get(stub)
        if c is None or c.kind is not ChangeKind.ADD:
            continue
        st = stats[stub]
        empty = ((stat.S_ISDIR(st.st_mode) and not _has_children(found, stub))
                 or (stat.S_ISREG(st.st_mode) and st.st_size == 0))
        if not empty:
            continue
        del found[stub]
        parent = stub.rpartition("/")[0]
        while parent and parent not in stubs:
            pc = found.get(parent)
            if pc is None or pc.kind is not ChangeKind.ADD or _has_children(found, parent) \
                    or not _same_dir_in_lowers(parent, stats[parent], lowers):
                break
            del found[parent]
            parent = parent.rpartition("/")[0]


def container_ids(st: os.stat_result, uid_map: Iterable[tuple[int, int, int]],
                  gid_map: Iterable[tuple[int, int, int]]) -> tuple[int, int]:
    """(uid, gid) of an upperdir entry as the sandbox saw it, given the sandbox's id maps
    (builder.sandbox.id_maps(): (inside, outside, count) triples; empty = identity). Rootless
    subid sandboxes store subordinate host ids in the upper; the layer must record these."""
    return _unmap(st.st_uid, tuple(uid_map)), _unmap(st.st_gid, tuple(gid_map))


def _unmap(host_id: int, id_map: tuple[tuple[int, int, int], ...]) -> int:
    if not id_map:
        return host_id
    for inside, outside, count in id_map:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return 65534  # the kernel's overflow id: not mapped into the sandbox
