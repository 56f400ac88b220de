"""The build context on disk: which entries a COPY/ADD selects (after .dockerignore), and
their content fingerprints for the cache (xxh3, memoised by stat stamp in the store).

Selection rules (BuildKit/fsutil): `.dockerignore` patterns are matched with
moby/patternmatcher against slash-separated paths relative to the context root; an excluded
directory is skipped whole unless a later `!` pattern could re-include something inside it;
the ignore file and the Dockerfile themselves are ordinary entries. An include is a cleaned
path relative to the root that may hold wildcards (Go filepath.Match per component); it
selects the matched entries and, for directories, everything below them.

Symlinks on the way to a source, and a source that is itself a symlink, are followed *inside*
the context root (BuildKit's FollowLinks over fsutil: absolute targets are re-rooted at the
context, `..` stops at the root), so a context can never name a host file outside itself. A
followed source keeps the name it was written as, but its fingerprint is the target's — the
cache sees what is copied, not the link. Symlinks found below a copied directory stay symlinks.

Fingerprints cover path, type, permission bits, uid, gid, symlink target and content — never
timestamps or inode numbers (DESIGN.md §3). A file is re-read only when its
(size, mtime_ns, ino, ctime_ns) stamp changed since it was last hashed.

Every path a selection looks at — each listed directory, each selected entry, each symlink
followed — is also recorded in `stamps` (builder.buildstamp): while none of them changes, the
same selection gives the same fingerprints, which lets an unchanged rebuild skip even this walk.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import xxhash

from builder import buildstamp
from builder.executor.cachekey import EntryPrint
from builder.patternmatcher import MatchInfo, PatternMatcher, go_filepath_match
from builder.store import StatMemo

_META = set("*?[\\")
_CHUNK = 1 << 20
_MAX_HOPS = 40  # Linux's MAXSYMLINKS


@dataclass(frozen=True, slots=True)
class Entry:
    """One selected entry: `path` relative to the context root, `host` its path on disk."""

    path: str
    host: str
    st: os.stat_result


def has_magic(path: str) -> bool:
    return any(c in _META for c in path)


def hash_file(host: str) -> str:
    """xxh3-128 hex of a file's bytes."""
    h = xxhash.xxh3_128()
    with open(host, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def follow_links(rel: str, readlink: Callable[[str], str | None]) -> str | None:
    """`rel` with every symlink among its components (the last one too) followed inside a
    root, as a clean relative path: absolute targets are re-rooted, `..` stops at the root.
    `readlink(path)` gives the target when the already-resolved `path` is a symlink, else
    None. None after 40 hops (Linux's MAXSYMLINKS): a loop."""
    todo = [p for p in rel.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while todo:
        comp = todo.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        target = readlink("/".join([*done, comp]))
        if target is not None:
            hops += 1
            if hops > _MAX_HOPS:
                return None
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p and p != "."] + todo
            continue
        done.append(comp)
    return "/".join(done)


class BuildContext:
    """A directory read as a build context. `excludes` are .dockerignore patterns (empty =
    everything). Thread-safe for reading; the memo is used from one thread at a time.
    `stamps` maps every host path read so far to its buildstamp stamp (None: absent)."""

    def __init__(self, root: str | os.PathLike[str], excludes: Sequence[str] = ()) -> None:
        # absolute: host paths key the store-wide stat memo, so `ctx/x` seen from two working
        # directories must not be one entry
        self.root = Path(os.path.abspath(root))
        self.matcher = PatternMatcher(list(excludes)) if excludes else None
        self.stamps: dict[str, buildstamp.Stamp | None] = {}

    # --- host access: every lookup is stamped ----------------------------------------------
    def _lstat(self, host: str) -> os.stat_result | None:
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            self.stamps[host] = None
            return None
        self.stamps[host] = buildstamp.stamp_of(st)
        return st

    def _is_dir(self, host: str) -> bool:
        """A real directory (not a symlink to one)."""
        st = self._lstat(host)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def _listdir(self, host: str) -> list[str]:
        """Sorted names in a directory; raises NotADirectoryError/FileNotFoundError."""
        self._lstat(host)  # its mtime changes when an entry is added, removed or renamed
        return sorted(os.listdir(host))

    # --- selection -------------------------------------------------------------------------
    def _excluded(self, rel: str, parent: MatchInfo | None) -> tuple[bool, MatchInfo | None]:
        if self.matcher is None:
            return False, None
        return self.matcher.matches_using_parent_results(rel, parent)

    def resolve(self, rel: str) -> str | None:
        """`rel` with its symlinks followed inside the root (`follow_links`); None for a loop.
        Only non-symlink directories are ever traversed on the host."""
        def readlink(cand: str) -> str | None:
            host = os.path.join(self.root, cand)
            st = self._lstat(host)
            return os.readlink(host) if st is not None and stat.S_ISLNK(st.st_mode) else None

        return follow_links(rel, readlink)

    def walk(self, rel: str = "", info: MatchInfo | None = None,
             host: str | None = None) -> Iterator[Entry]:
        """Every non-excluded entry below `rel` ("" = the root), sorted, parents first.
        `host` is the directory's path on disk when `rel` was reached through a symlink."""
        base = host if host is not None else (self.root / rel if rel else self.root)
        try:
            names = self._listdir(str(base))
        except (NotADirectoryError, FileNotFoundError):
            return
        for name in names:
            crel = f"{rel}/{name}" if rel else name
            path = os.path.join(base, name)
            excluded, child_info = self._excluded(crel, info)
            if excluded:  # not stamped: nothing of an excluded entry is read...
                if self.matcher is not None and self.matcher.exclusions and \
                        stat.S_ISDIR(os.lstat(path).st_mode):
                    yield from self.walk(crel, child_info, path)  # ...but what `!` brings back
                continue
            st = self._lstat(path)
            if st is None:  # removed while we walked
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            yield Entry(crel, path, st)
            if is_dir:
                yield from self.walk(crel, child_info, path)

    def is_excluded(self, rel: str) -> bool:
        return self.matcher is not None and self.matcher.matches_or_parent_matches(rel)

    def entry(self, rel: str) -> Entry | None:
        """The entry a source path names, if present and neither it nor what it resolves to
        is excluded: symlinks are followed inside the root (see the module docstring), so
        `host`/`st` are the target's while `path` stays `rel`."""
        if not rel:
            return self._root_entry()
        if self.is_excluded(rel):
            return None
        resolved = self.resolve(rel)
        if resolved is None or (resolved != rel and resolved and self.is_excluded(resolved)):
            return None
        host = os.path.join(self.root, resolved) if resolved else str(self.root)
        st = self._lstat(host)
        return Entry(rel, host, st) if st is not None else None

    def _root_entry(self) -> Entry:
        st = self._lstat(str(self.root))
        if st is None:
            raise FileNotFoundError(f"build context {self.root} is gone")
        return Entry("", str(self.root), st)

    def expand(self, pattern: str) -> list[Entry]:
        """The entries one COPY source names: the literal path, or every path at that depth
        matching the wildcard pattern (sorted). Excluded entries never match."""
        pattern = posixpath.normpath("/" + pattern).lstrip("/")  # lexically, as BuildKit
        if pattern in ("", "."):
            return [self._root_entry()]
        if not has_magic(pattern):
            e = self.entry(pattern)
            return [e] if e is not None else []
        parts = pattern.split("/")
        fixed: list[str] = []
        for p in parts:
            if has_magic(p):
                break
            fixed.append(p)
        out: list[Entry] = []
        depth = len(parts)

        def visit(rel: str, host: str, level: int) -> None:
            try:
                names = self._listdir(host)
            except (NotADirectoryError, FileNotFoundError):
                return
            for name in names:
                crel = f"{rel}/{name}" if rel else name
                if not go_filepath_match("/".join(parts[:level + 1]), crel):
                    continue
                if level + 1 == depth:
                    e = self.entry(crel)
                    if e is not None:
                        out.append(e)
                    continue
                # a directory on the way: followed inside the root, exclusions apply below
                resolved = self.resolve(crel)
                sub = os.path.join(self.root, resolved) if resolved is not None else None
                if sub is not None and self._is_dir(sub):
                    visit(crel, sub, level + 1)

        start = "/".join(fixed)
        resolved = self.resolve(start)
        top = os.path.join(self.root, resolved) if resolved is not None else None
        if top is None or not self._is_dir(top):
            return []
        visit(start, top, len(fixed))
        return out

    def select(self, includes: Sequence[str]) -> list[Entry]:
        """Entries the includes select (all of the context when `includes` is empty), each
        directory followed by everything below it; sorted by path, without duplicates."""
        if not includes:
            return list(self.walk())
        seen: dict[str, Entry] = {}
        for inc in includes:
            for e in self.expand(inc):
                seen[e.path] = e
                if stat.S_ISDIR(e.st.st_mode):
                    for sub in self.walk(e.path, host=e.host):
                        seen[sub.path] = sub
        return [seen[k] for k in sorted(seen)]

    def view(self, rel: str, dest: str) -> None:
        """Make `dest` show what a bind mount of `rel` may see: `rel` and, for a directory,
        everything below it that is not excluded — copied (in the kernel, with modes, owners
        and times), because hard links would change the context files' ctimes. Other file
        types than directories, regular files and symlinks are left out. Raises
        FileNotFoundError when `rel` is missing or excluded."""
        top = self.entry(rel) if rel else self._root_entry()
        if top is None:
            raise FileNotFoundError(rel)
        _place(top, dest)
        if stat.S_ISDIR(top.st.st_mode):
            for e in self.walk(top.path, host=top.host):
                _place(e, os.path.join(dest, e.path[len(top.path):].lstrip("/")))

    # --- fingerprints ----------------------------------------------------------------------
    def fingerprint(self, includes: Sequence[str], memo: StatMemo | None = None
                    ) -> list[EntryPrint]:
        """EntryPrints of the selection (content hashed through `memo` when given)."""
        out: list[EntryPrint] = []
        for e in self.select(includes):
            st = e.st
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                fp = memo.get(e.host, st) if memo is not None else None
                if fp is None:
                    fp = hash_file(e.host)
                    if memo is not None:
                        memo.put(e.host, st, fp)
                out.append(EntryPrint(e.path, "f", mode, st.st_uid, st.st_gid, "", fp))
            elif stat.S_ISDIR(st.st_mode):
                out.append(EntryPrint(e.path, "d", mode, st.st_uid, st.st_gid))
            elif stat.S_ISLNK(st.st_mode):
                out.append(EntryPrint(e.path, "l", mode, st.st_uid, st.st_gid,
                                      os.readlink(e.host)))
            else:
                out.append(EntryPrint(e.path, "o", st.st_mode, st.st_uid, st.st_gid))
        return out


def _place(e: Entry, dest: str) -> None:
    """Recreate one context entry at `dest` (see `BuildContext.view`)."""
    st = e.st
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dest)
        os.chmod(dest, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(e.host), dest)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(e.host, dest, follow_symlinks=False)
    else:
        return
    os.lchown(dest, st.st_uid, st.st_gid)

