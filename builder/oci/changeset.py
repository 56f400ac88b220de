"""The change set: what a build step changed, as input to the layer writer.

An iterable of `Change(path, kind, source)`: `path` is relative to the image root
("usr/bin/x", no leading "/" or "./"), `kind` is add/modify/delete/opaque and `source` the file
on disk whose lstat, content, link target and xattrs go into the layer. The writer records
only the paths it is given: callers include the parent directories they want in the layer
(an overlayfs upperdir always has them). Two producers live here: `changes_from_upperdir`
(overlayfs semantics) and `changes_from_tree` (everything is an ADD, for COPY and import).

Ownership: the writer records each source's uid/gid as lstat reports it, unless an
`IdMapping` says how host ids translate back to the ids the build saw. A rootless sandbox
needs one: what USER 1000 creates in its upperdir belongs to a subordinate id on the host
(e.g. 100999), and the layer must say 1000. `builder.snapshot.changes` attaches the sandbox's
mapping to every change it returns, so the layer is right without the caller doing anything.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


class ChangeKind(StrEnum):
    ADD = "add"
    MODIFY = "modify"      # written exactly like ADD; kept distinct for reporting
    DELETE = "delete"      # → `.wh.<name>`
    OPAQUE = "opaque"      # a directory that hides all lower content → dir + `.wh..wh..opq`


@dataclass(frozen=True, slots=True)
class IdMapping:
    """Host → container id translation for the owners the writer records: the sandbox's
    user-namespace maps, as (inside, outside, count) triples (the lines of
    /proc/PID/uid_map, user_namespaces(7)). An empty map is the identity. A host id that no
    line covers becomes 65534, the kernel's overflow id: the sandbox saw it as that too."""

    uids: tuple[tuple[int, int, int], ...] = ()
    gids: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def of(cls, uid_map: Iterable[Any], gid_map: Iterable[Any]) -> IdMapping:
        """From `builder.sandbox.IdMap` objects (inside/outside/count) or plain triples."""
        return cls(_triples(uid_map), _triples(gid_map))

    @property
    def identity(self) -> bool:
        return not self.uids and not self.gids

    def to_container(self, uid: int, gid: int) -> tuple[int, int]:
        """(uid, gid) as the container saw them, for host-side owners `uid`, `gid`."""
        return _unmap(uid, self.uids), _unmap(gid, self.gids)


def _triples(id_map: Iterable[Any]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for m in id_map:
        if hasattr(m, "inside"):
            out.append((int(m.inside), int(m.outside), int(m.count)))
        else:
            inside, outside, count = m
            out.append((int(inside), int(outside), int(count)))
    return tuple(out)


def _unmap(host_id: int, id_map: tuple[tuple[int, int, int], ...]) -> int:
    if not id_map:
        return host_id
    for inside, outside, count in id_map:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return 65534  # the overflow id (/proc/sys/fs/overflowuid): not mapped into the sandbox


@dataclass(frozen=True, slots=True)
class Change:
    """One filesystem change. `source` is required for every kind except DELETE. `id_map`,
    when set, translates the source's on-disk owner to the uid/gid the layer records."""

    path: str
    kind: ChangeKind
    source: str | None = None
    id_map: IdMapping | None = None


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
