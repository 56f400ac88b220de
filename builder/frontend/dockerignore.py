"""Reading .dockerignore files (moby ignorefile rules) and choosing which one applies.

Matching itself lives in `builder.patternmatcher` (shared with the executor, which must not
import the front end); this module re-exports it for callers of the front end.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.errors import Diagnostic, Severity, UsageError
from builder.patternmatcher import BadPattern, PatternMatcher, go_clean
from builder.source import Span

__all__ = ["BadPattern", "PatternMatcher", "find_ignore_file", "load_ignore", "read_ignore",
           "read_ignore_lines"]

_BOM = "\ufeff"


def read_ignore(text: str) -> list[str]:
    """See `read_ignore_lines`; the patterns only."""
    return [pattern for _, pattern in read_ignore_lines(text)]


def read_ignore_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line, pattern) of a .dockerignore file's text, the patterns as
    `ignorefile.ReadAll` returns them.

    Lines are split like bufio.ScanLines (a trailing CR is dropped); a UTF-8 BOM on the first
    line is removed; lines starting with `#` are comments (only in column 1); every other line
    is trimmed and dropped when empty; `!` marks an exclusion (the space after it is trimmed);
    the pattern is cleaned like `filepath.Clean` and a leading `/` is removed so absolute
    patterns are relative to the context root. `!` alone stays `!` (the matcher rejects it).
    """
    out: list[tuple[int, str]] = []
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
        out.append((number + 1, "!" + pattern if invert else pattern))
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

    Every pattern is validated now, so a malformed one is reported before the build: raises
    UsageError with a diagnostic at the ignore file's FILE:LINE (code `DI-PATTERN`)."""
    path = find_ignore_file(context, dockerfile)
    if path is None:
        return None, []
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    entries = read_ignore_lines(text)
    for line, pattern in entries:
        try:
            PatternMatcher([pattern])
        except BadPattern as err:
            raw = text.split("\n")[line - 1].rstrip("\r")
            span = Span(str(path), line, 1, line, max(len(raw), 1) + 1)
            message = f"invalid .dockerignore pattern {pattern!r}: {err}"
            hint = "escape [ ] * ? with \\, and do not use a lone !"
            diag = Diagnostic("DI-PATTERN", Severity.ERROR, message, span, hint, None, raw)
            raise UsageError(message, hint=hint, diagnostics=(diag,)) from None
    return path, [pattern for _, pattern in entries]
