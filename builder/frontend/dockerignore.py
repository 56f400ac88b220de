"""Reading .dockerignore files (moby ignorefile rules) and choosing which one applies.

Matching itself lives in `builder.patternmatcher` (shared with the executor, which must not
import the front end); this module re-exports it for callers of the front end.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.patternmatcher import BadPattern, PatternMatcher, go_clean

__all__ = ["BadPattern", "PatternMatcher", "find_ignore_file", "load_ignore", "read_ignore"]

_BOM = "\ufeff"


def read_ignore(text: str) -> list[str]:
    """Patterns of a .dockerignore file's text, as `ignorefile.ReadAll` returns them.

    Lines are split like bufio.ScanLines (a trailing CR is dropped); a UTF-8 BOM on the first
    line is removed; lines starting with `#` are comments (only in column 1); every other line
    is trimmed and dropped when empty; `!` marks an exclusion (the space after it is trimmed);
    the pattern is cleaned like `filepath.Clean` and a leading `/` is removed so absolute
    patterns are relative to the context root. `!` alone stays `!` (the matcher rejects it).
    """
    out: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final newline does not start another line
    for number, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
        if number == 0 and line.startswith(_BOM):
            line = line[len(_BOM):]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def find_ignore_file(context: str | os.PathLike[str], dockerfile: str | os.PathLike[str] | None
                     ) -> Path | None:
    """The ignore file that applies to a build, or None.

    BuildKit/buildx rule: `<Dockerfile name>.dockerignore` beside the Dockerfile (e.g.
    `app.Dockerfile.dockerignore`) takes precedence over `.dockerignore` at the context root.
    A Dockerfile read from standard input ("-") only uses the context's file."""
    if dockerfile is not None and str(dockerfile) != "-":
        df = Path(dockerfile)
        beside = df.with_name(df.name + ".dockerignore")
        if beside.is_file():
            return beside
    default = Path(context) / ".dockerignore"
    return default if default.is_file() else None


def load_ignore(context: str | os.PathLike[str], dockerfile: str | os.PathLike[str] | None
                ) -> tuple[Path | None, list[str]]:
    """Find and read the applicable ignore file: (its path or None, its patterns).
    The patterns are validated (raises BadPattern for a malformed one)."""
    path = find_ignore_file(context, dockerfile)
    if path is None:
        return None, []
    patterns = read_ignore(path.read_text(encoding="utf-8", errors="surrogateescape"))
    PatternMatcher(patterns)  # validate now, so a bad pattern is reported before the build
    return path, patterns
