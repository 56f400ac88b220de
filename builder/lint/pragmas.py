"""In-file suppressions: `# hadolint ignore=…`, `# hadolint global ignore=…`,
`# pybuild ignore=…`, `# pybuild global ignore=…` and BuildKit's `# check=` directive.

Semantics (hadolint's, src/Hadolint/Pragma.hs): an `ignore=` comment suppresses the listed
codes on the line right after it (where the next instruction starts); `global ignore=`
suppresses them everywhere. For `# pybuild ignore=` the suppression reaches the next
instruction even past blank lines and other comments. BuildKit's
`# check=skip=A,B;error=true` (https://docs.docker.com/reference/build-checks/) skips the
named checks (or `all`), with `error=true` raises BuildKit check findings to errors, and with
`experimental=A,B` (or `all`) turns on BuildKit's experimental checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from builder.syntax import nodes as n

# These patterns read our own comment syntax (not shell): `hadolint|pybuild [global] ignore=`.
_IGNORE = re.compile(r"^\s*(hadolint|pybuild)[ \t]+(global[ \t]+)?ignore[ \t]*=[ \t]*"
                     r"([A-Za-z0-9_]+(?:[ \t]*,[ \t]*[A-Za-z0-9_]+)*)[ \t]*(?:#.*)?$")


@dataclass
class Pragmas:
    by_line: dict[int, set[str]] = field(default_factory=dict)
    global_: set[str] = field(default_factory=set)
    check_skip: set[str] = field(default_factory=set)
    check_skip_all: bool = False
    check_error: bool = False
    check_experimental: set[str] = field(default_factory=set)
    has_ignore_pragma: list[int] = field(default_factory=list)

    def suppressed(self, code: str, line: int) -> bool:
        if code in self.global_ or code in self.by_line.get(line, ()):
            return True
        return self.check_skip_all or code in self.check_skip


def ignore_codes(comment: str) -> tuple[str, bool, list[str]] | None:
    """(tool, is_global, codes) when the comment text is an ignore pragma."""
    m = _IGNORE.match(comment)
    if not m:
        return None
    return m.group(1), bool(m.group(2)), [c.strip() for c in m.group(3).split(",")]


def collect(df: n.Dockerfile) -> Pragmas:
    p = Pragmas()
    starts = sorted(i.span.line for i in df.instructions)
    for c in df.comments:
        got = ignore_codes(c.text)
        if not got:
            continue
        tool, is_global, codes = got
        line = c.span.line
        if tool == "hadolint":
            p.has_ignore_pragma.append(line)
        if is_global:
            p.global_.update(codes)
            continue
        target = line + 1
        if tool == "pybuild":
            target = next((s for s in starts if s > line), target)
        p.by_line.setdefault(target, set()).update(codes)
    check = df.directive("check")
    if check:
        for part in check.split(";"):
            key, _, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if key == "skip":
                names = {v.strip() for v in value.split(",") if v.strip()}
                if "all" in names:
                    p.check_skip_all = True
                p.check_skip |= names
            elif key == "error":
                p.check_error = value.lower() == "true"
            elif key == "experimental":
                p.check_experimental |= {v.strip() for v in value.split(",") if v.strip()}
    return p
