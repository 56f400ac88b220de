"""The Rule type: a code, its metadata (severity, docs text) and the check function."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.errors import Severity

if TYPE_CHECKING:
    from builder.lint.context import Context
    from builder.lint.finding import Finding

Check = Callable[["Context"], Iterable["Finding"]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A lint rule.

    `source` is "hadolint" (DL codes, hadolint 2.15.1 semantics), "buildkit" (BuildKit build
    check names, https://docs.docker.com/reference/build-checks/) or "pybuild" (PB codes:
    stage-aware rules from our own plan). `message` is the default finding text; `why`,
    `fix`, `bad` and `good` feed the generated docs page (docs/lint/<code>.md).
    `default_enabled` False means the rule runs only when a config enables it (hadolint's
    DL1001/DL3057 are off by default).
    """

    code: str
    severity: Severity
    message: str
    check: Check
    source: str = "hadolint"
    name: str = ""
    why: str = ""
    fix: str = ""
    bad: str = ""
    good: str = ""
    default_enabled: bool = True
    fixable: bool = False

    @property
    def url(self) -> str:
        if self.source == "hadolint":
            return f"https://github.com/hadolint/hadolint/wiki/{self.code}"
        if self.source == "buildkit":
            slug = "".join("-" + c.lower() if c.isupper() else c for c in self.code).lstrip("-")
            return f"https://docs.docker.com/reference/build-checks/{slug}/"
        return f"docs/lint/{self.code}.md"


REGISTRY: dict[str, Rule] = {}


def rule(code: str, severity: Severity, message: str, *, source: str = "hadolint",
         name: str = "", why: str = "", fix: str = "", bad: str = "", good: str = "",
         default_enabled: bool = True, fixable: bool = False) -> Callable[[Check], Check]:
    """Register the decorated check function as rule `code`."""

    def register(fn: Check) -> Check:
        if code in REGISTRY:
            raise ValueError(f"duplicate lint rule {code}")
        REGISTRY[code] = Rule(code, severity, message, fn, source, name, why, fix, bad, good,
                              default_enabled, fixable)
        return fn

    return register
