"""Path patterns of .dockerignore and COPY --exclude, exactly as moby/patternmatcher matches them.

Pure logic with no dependencies, so both the front end (which reads .dockerignore files) and
the executor (which walks the build context) can use it. Paths and patterns are slash-separated
(pybuild runs on Linux: the separator is `/` and `\\` escapes the next character).

Contract:
- `PatternMatcher(patterns)` trims each pattern, drops empty ones, cleans it like Go's
  `filepath.Clean`, strips a leading `!` (an exclusion: re-include what earlier patterns
  matched) and validates it with Go's `filepath.Match` syntax; a lone `!` or a malformed pattern
  raises `BadPattern` (`[Local-Only]/`-style patterns that only fail when compiled raise on
  match instead, every time).
- `matches_or_parent_matches(path)`: True when the path or any parent directory is matched by
  the last deciding pattern (what BuildKit uses to exclude a file from the context).
- `matches_using_parent_results(path, parent_info)`: the same answer computed incrementally
  while walking a tree (pass the MatchInfo of the parent directory; `None` for no context).
- `**` matches any number of path segments (including none), `*` and `?` never match `/`,
  `dir/**` does not match `dir` itself, `[...]` classes as in filepath.Match.
"""

from __future__ import annotations

import posixpath
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

SEP = "/"


class BadPattern(ValueError):
    """A pattern is malformed (Go: filepath.ErrBadPattern / `illegal exclusion pattern`)."""


def go_clean(path: str) -> str:
    """Go's `path/filepath.Clean` on Unix (posixpath.normpath differs on `""` and `//x`)."""
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


# --------------------------------------------------------------------------- Go filepath.Match


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern("syntax error in pattern")
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern("syntax error in pattern")
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise BadPattern("syntax error in pattern")
    return r, rest


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    """Go's matchChunk; raises BadPattern. Returns (rest of s, ok)."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk.startswith("^"):
                negated = True
                chunk = chunk[1:]
            matched = False
            nrange = 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if lo <= r <= hi and r:
                    matched = True
                nrange += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == SEP:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern("syntax error in pattern")
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return "", False
    return s, True


def go_filepath_match(pattern: str, name: str) -> bool:
    """Go's `path/filepath.Match` on Unix, including its syntax check of the whole pattern;
    raises BadPattern for a malformed pattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and chunk == "":
            return SEP not in name  # a trailing * matches the rest unless it has a /
        t, ok = _match_chunk(chunk, name)
        if ok and (not t or pattern):
            name = t
            continue
        if star:
            found = False
            i = 0
            while i < len(name) and name[i] != SEP:
                t, ok = _match_chunk(chunk, name[i + 1:])
                if ok:
                    if not pattern and t:
                        i += 1
                        continue
                    name = t
                    found = True
                    break
                i += 1
            if found:
                continue
        # Before returning false, check the rest of the pattern is well formed.
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return name == ""


# --------------------------------------------------------------------------- patterns


class MatchType(Enum):
    """How a cleaned pattern is matched (patternmatcher's matchType)."""

    EXACT = "exactMatch"
    PREFIX = "prefixMatch"  # dir/**
    SUFFIX = "suffixMatch"  # **x, **/x
    REGEXP = "regexpMatch"


_SHOULD_ESCAPE = set(".+()|{}$")


def compile_pattern(cleaned: str, sep: str = SEP) -> tuple[MatchType, str]:
    """Classify a cleaned pattern and build its Go regexp source (empty unless REGEXP) for
    separator `sep` (`/`, or `\\` as patternmatcher does on Windows)."""
    reg = "^"
    kind = MatchType.EXACT
    esc_sl = sep + sep if sep == "\\" else sep
    i, n = 0, len(cleaned)
    index = 0
    while i < n:
        ch = cleaned[i]
        i += 1
        if ch == "*":
            if i < n and cleaned[i] == "*":
                i += 1
                if i < n and cleaned[i] == sep:  # treat **/ as **
                    i += 1
                if i >= n:  # ** at the end: accept everything below, like .gitignore
                    if kind == MatchType.EXACT:
                        kind = MatchType.PREFIX
                    else:
                        reg += ".*"
                        kind = MatchType.REGEXP
                else:
                    reg += "(.*" + esc_sl + ")?"
                    kind = MatchType.REGEXP
                if index == 0:
                    kind = MatchType.SUFFIX
            else:
                reg += "[^" + esc_sl + "]*"
                kind = MatchType.REGEXP
        elif ch == "?":
            reg += "[^" + esc_sl + "]"
            kind = MatchType.REGEXP
        elif ch in _SHOULD_ESCAPE:
            reg += "\\" + ch
        elif ch == "\\":
            if sep == "\\":
                reg += esc_sl
                index += 1
                continue
            if i < n:
                reg += "\\" + cleaned[i]
                i += 1
                kind = MatchType.REGEXP
            else:
                reg += "\\"
        elif ch in "[]":
            reg += ch
            kind = MatchType.REGEXP
        else:
            reg += ch
        index += 1
    if kind == MatchType.REGEXP:
        return kind, reg + "$"
    return kind, ""


def _python_regex(go_source: str) -> re.Pattern[str]:
    """Compile a Go (RE2) regexp source made by compile_pattern. The subset used (literals,
    escapes, classes, `.*`, groups) means the same in Python; RE2 errors map to BadPattern."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Python warns on `[[`, Go does not care
        try:
            # RE2's `$` (no multi-line flag) is the end of text; Python's `$` also matches
            # before a final newline, so the anchor becomes \Z.
            if go_source.endswith("$"):
                go_source = go_source[:-1] + r"\Z"
            return re.compile(go_source)
        except re.error as err:
            raise BadPattern(f"syntax error in pattern: {err}") from None


@dataclass(slots=True)
class Pattern:
    """One pattern: `cleaned` (without `!`), whether it is an `exclusion`, and its matcher
    (compiled on first use, as patternmatcher does)."""

    cleaned: str
    exclusion: bool
    dirs: int
    match_type: MatchType | None = None
    regexp: re.Pattern[str] | None = None
    _fn: Callable[[str], bool] | None = None
    _bad: bool = False

    def match(self, path: str) -> bool:
        """Match one path against this pattern alone; raises BadPattern (every time) when the
        pattern cannot be compiled."""
        fn = self._fn
        if fn is None:
            fn = self._compile()
        return fn(path)

    def _compile(self) -> Callable[[str], bool]:
        if self._bad:
            raise BadPattern(f"syntax error in pattern {self.cleaned!r}")
        try:
            kind, source = compile_pattern(self.cleaned)
            regexp = _python_regex(source) if kind is MatchType.REGEXP else None
        except BadPattern:
            self._bad = True
            raise BadPattern(f"syntax error in pattern {self.cleaned!r}") from None
        self.match_type, self.regexp = kind, regexp
        cleaned = self.cleaned
        fn: Callable[[str], bool]
        if kind is MatchType.EXACT:
            fn = cleaned.__eq__
        elif kind is MatchType.PREFIX:
            prefix = cleaned[:-2]  # strip the trailing **
            fn = lambda path: path.startswith(prefix)  # noqa: E731
        elif kind is MatchType.SUFFIX:
            suffix = cleaned[2:]  # strip the leading **
            bare = suffix[1:] if suffix[:1] == SEP else None  # **/foo matches foo

            def fn(path: str) -> bool:
                return path.endswith(suffix) or path == bare
        else:
            assert regexp is not None
            rx_match = regexp.match
            fn = lambda path: rx_match(path) is not None  # noqa: E731
        self._fn = fn
        return fn


def _parents(path: str) -> list[str]:
    """`a/b/c` → [`a`, `a/b`] (filepath.Dir split on the separator, "." → none)."""
    parent = posixpath.dirname(path)
    if parent in ("", "."):
        return []
    out = []
    index = parent.find(SEP)
    while index != -1:
        out.append(parent[:index])
        index = parent.find(SEP, index + 1)
    out.append(parent)
    return out


@dataclass(frozen=True, slots=True)
class MatchInfo:
    """Per-pattern results for a directory, passed down to its children while walking."""

    parent_matched: tuple[bool, ...] = ()


class PatternMatcher:
    """An ordered list of patterns; the last pattern that matches a path decides."""

    def __init__(self, patterns: list[str] | tuple[str, ...]) -> None:
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = False
            if p[0] == "!":
                if len(p) == 1:
                    raise BadPattern('illegal exclusion pattern: "!"')
                exclusion = True
                p = p[1:]
                self.exclusions = True
            go_filepath_match(p, ".")  # syntax check, as patternmatcher.New does
            self.patterns.append(Pattern(cleaned=p, exclusion=exclusion, dirs=len(p.split(SEP))))

    def matches_or_parent_matches(self, path: str) -> bool:
        """True when `path` (slash-separated, relative) or one of its parents is matched."""
        matched = False
        prefixes: list[str] | None = None  # the parent directories, top first, built once
        for pattern in self.patterns:
            # An inclusion cannot change a match, an exclusion cannot change a non-match.
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match:
                if prefixes is None:
                    prefixes = _parents(path)
                for prefix in prefixes:
                    if pattern.match(prefix):
                        match = True
                        break
            if match:
                matched = not pattern.exclusion
        return matched

    def matches_exact(self, path: str) -> bool:
        """Like matches_or_parent_matches without looking at parents."""
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            if pattern.match(path):
                matched = not pattern.exclusion
        return matched

    def matches_using_parent_results(
        self, path: str, parent: MatchInfo | None = None
    ) -> tuple[bool, MatchInfo]:
        """Incremental form for tree walks: pass the MatchInfo returned for the parent
        directory (None at the top or when unknown, which falls back to checking parents)."""
        parent_matched = parent.parent_matched if parent else ()
        if parent_matched and len(parent_matched) != len(self.patterns):
            raise ValueError("wrong number of values in parent_matched")
        matched = False
        results = [False] * len(self.patterns)
        for i, pattern in enumerate(self.patterns):
            match = parent_matched[i] if parent_matched else False
            if not match:
                if pattern.exclusion != matched:
                    continue
                match = pattern.match(path)
                if not match and not parent_matched:
                    ppath = posixpath.dirname(path) or "."
                    if ppath != ".":
                        dirs = ppath.split(SEP)
                        for j in range(len(dirs)):
                            if pattern.match(SEP.join(dirs[: j + 1])):
                                match = True
                                break
            results[i] = match
            if match:
                matched = not pattern.exclusion
        return matched, MatchInfo(tuple(results))

    def matches_legacy(self, path: str) -> bool:
        """The deprecated `PatternMatcher.Matches`: checks only the parent prefix as long as
        the pattern (kept for conformance with docker's older behaviour)."""
        matched = False
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split(SEP)
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match and parent != "." and pattern.dirs <= len(parent_dirs):
                try:
                    match = pattern.match(SEP.join(parent_dirs[: pattern.dirs]))
                except BadPattern:
                    match = False
            if match:
                matched = not pattern.exclusion
        return matched


def matches(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """The deprecated package-level `patternmatcher.Matches(file, patterns)`: the cleaned path
    `.` never matches. Raises BadPattern."""
    pm = PatternMatcher(patterns)
    path = go_clean(path)
    if path == ".":
        return False
    return pm.matches_legacy(path)


def matches_or_parent_matches(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Package-level MatchesOrParentMatches: the cleaned path `.` never matches."""
    pm = PatternMatcher(patterns)
    path = go_clean(path)
    if path == ".":
        return False
    return pm.matches_or_parent_matches(path)
