"""A lint finding (what rule fired where) and the ordering findings are reported in."""

from __future__ import annotations

from dataclasses import dataclass

from builder.errors import Diagnostic, Severity
from builder.source import Span


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violation. `span.line`/`span.column` are what hadolint calls line/column.

    `code` is a hadolint code (DL3008), a BuildKit check name (FromAsCasing), our own code
    (PB1001) or a ShellCheck code (SC2086).
    """

    code: str
    severity: Severity
    message: str
    span: Span
    line_text: str | None = None
    url: str | None = None

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def to_diagnostic(self) -> Diagnostic:
        return Diagnostic(self.code, self.severity, self.message, self.span, None, self.url,
                          self.line_text)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.column, self.code)
