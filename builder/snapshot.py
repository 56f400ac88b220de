"""Turns a finished step's overlay-format upper directory into the change set the layer
writer consumes (`builder.oci.layers.Change`), minus the sandbox's own mount-point stubs.
Every sandbox filesystem strategy leaves that format behind: kernel overlayfs,
fuse-overlayfs, and the copy strategy, which converts its tree afterwards
(`builder.sandbox.tree.to_overlay_upper`).

Overlay's on-disk format (Documentation/filesystems/overlayfs.rst) → OCI layer semantics
(image-spec layer.md "Whiteouts"):
  - a character device 0:0 (or a `*.overlay.whiteout` xattr) is a deletion → DELETE;
  - a directory with `trusted.overlay.opaque` / `user.overlay.opaque` = "y" replaced whatever
    the lowers had there → OPAQUE;
  - overlay's own xattrs (`trusted.overlay.*`, `user.overlay.*`) are stripped by the writer;
  - fuse-overlayfs, when it cannot use those, writes OCI-style `.wh.<name>` files and a
    `.wh..wh..opq` marker (plus a `.wh..opq` device): they mean the same;
  - mount-point stubs the sandbox created (ExecResult.stubs) are not the step's changes;
  - owners: a rootless sandbox's upper holds host-side ids (the caller's uid for container
    root, subordinate ids for the rest); every change carries the sandbox's `IdMapping`, so
    the layer writer records the ids the step saw (USER 1000 → uid 1000, not 100999).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from builder.oci.layers import Change, ChangeKind, IdMapping
from builder.sandbox.mode import describe
from builder.sandbox.plan import SandboxError
from builder.sandbox.tree import (
    OPAQUE_XATTRS,
    is_whiteout,
    xattr,
)

_WH = ".wh."
_WH_OPQ = ".wh..wh..opq"
_FUSE_WH_OPQ = ".wh..opq"


def _in_lowers(rel: str, lowers: tuple[str, ...]) -> bool:
    """Whether some lower (topmost first) has `rel` and does not white it out."""
    for lower in reversed(lowers):
        full = os.path.join(lower, rel)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        return not is_whiteout(full, st)
    return False


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


def sandbox_id_mapping() -> IdMapping:
    """The id mapping of the sandboxes this process runs (`builder.sandbox.id_maps()`):
    identity as root, host → container ids when rootless."""
    from builder.sandbox.runner import id_maps  # lazy: the sandbox imports this module lazily

    return IdMapping.of(*id_maps())


def changes(upper: str, *, stubs: Iterable[str] = (),
            lowers: Iterable[str] = (),
            id_map: IdMapping | None = None) -> tuple[Change, ...]:
    """Read `upper` (an overlay upperdir after the step's process exited) as a change set,
    sorted by path bytes (parents before children), ready for `oci.layers.write_layer`.

    `stubs` (ExecResult.stubs) are dropped when still empty, and so are their ancestor
    directories that hold nothing else and match the lowers' mode and owner (pure copy-ups
    caused by creating the stub). `lowers` (lowest first) are read only for that check.
    `id_map` (default: `sandbox_id_mapping()`, what this process's sandboxes use) is attached
    to every change so the writer records container-side owners; pass `IdMapping()` to keep
    host ids. Read-only; call it after the step exited. Raises SandboxError when part of the
    upper cannot be read (os.walk would skip it silently: a layer missing files)."""
    if id_map is None:
        id_map = sandbox_id_mapping()
    attach = None if id_map.identity else id_map
    found: dict[str, Change] = {}
    stats: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(upper, onerror=_unreadable):
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir
        names = [*dirnames, *filenames]
        if rel_dir and (_WH_OPQ in names or _FUSE_WH_OPQ in names):
            found[rel_dir] = Change(rel_dir, ChangeKind.OPAQUE, dirpath, attach)
        for name in names:
            full = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name in (_WH_OPQ, _FUSE_WH_OPQ):
                continue
            if name.startswith(_WH):
                gone = f"{rel_dir}/{name[len(_WH):]}" if rel_dir else name[len(_WH):]
                found[gone] = Change(gone, ChangeKind.DELETE)
                continue
            st = os.lstat(full)
            if is_whiteout(full, st):
                found[rel] = Change(rel, ChangeKind.DELETE)
                continue
            kind = ChangeKind.ADD
            if stat.S_ISDIR(st.st_mode) and xattr(full, OPAQUE_XATTRS) == b"y":
                kind = ChangeKind.OPAQUE
            if found.get(rel, Change(rel, kind)).kind is ChangeKind.OPAQUE:
                kind = ChangeKind.OPAQUE  # already marked by a .wh..wh..opq inside it
            found[rel] = Change(rel, kind, full, attach)
            stats[rel] = st
    lowers = tuple(lowers)
    if lowers:
        # fuse-overlayfs marks every directory it creates as opaque, kernel overlayfs only
        # those that replace one: opaque means nothing where no lower has the directory.
        for rel, c in list(found.items()):
            if c.kind is ChangeKind.OPAQUE and not _in_lowers(rel, lowers):
                found[rel] = Change(rel, ChangeKind.ADD, c.source, c.id_map)
    _drop_stubs(found, stats, set(stubs), lowers)
    return tuple(sorted(found.values(), key=lambda c: c.path.encode("utf-8", "surrogateescape")))


def _unreadable(err: OSError) -> None:
    raise SandboxError(f"cannot read the step's changes: {describe(err)}",
                       hint="rootless, files the step gave to other users may be unreadable "
                            "outside the user namespace; see docs/sandbox.md") from None


def _has_children(found: dict[str, Change], path: str) -> bool:
    prefix = path + "/"
    return any(p.startswith(prefix) for p in found)


def _drop_stubs(found: dict[str, Change], stats: dict[str, os.stat_result], stubs: set[str],
                lowers: tuple[str, ...]) -> None:
    for stub in sorted(stubs, key=lambda p: p.count("/"), reverse=True):  # deepest first
        c = found.get(stub)
        # OPAQUE too: fuse-overlayfs marks every directory it creates anew as opaque.
        if c is None or c.kind is ChangeKind.DELETE:
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
    return IdMapping.of(uid_map, gid_map).to_container(st.st_uid, st.st_gid)
