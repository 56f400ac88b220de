"""The one shape of every user-facing problem (Diagnostic) and the exception types with exit codes.

Exit codes (DESIGN.md §6): 0 ok · 1 build failed / lint findings at or above the threshold ·
2 usage · 3 invalid Dockerfile · 4 environment · 5 registry/network · 130 interrupted.
The core raises these; only builder.cli renders them and exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from builder.source import Span


class Severity(str, Enum):  # noqa: UP042 (str() of a member must stay "Severity.X")
    """Finding levels, ordered from most to least severe (hadolint's vocabulary)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    STYLE = "style"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.STYLE: 3}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem at a place: a stable code, what is wrong, and what to do about it.

    `line_text` is the source line the span points into, when known, so the CLI can print it
    with a caret without re-reading the file (which may have been standard input).
    """

    code: str
    severity: Severity
    message: str
    span: Span | None = None
    hint: str | None = None
    url: str | None = None
    line_text: str | None = None

    def render(self) -> str:
        """The text people read (no trailing newline): `file:line:col: severity CODE:
        message`, the line with a caret under the span, the hint and the docs address."""
        where = f"{self.span}: " if self.span else ""
        out = [f"{where}{self.severity.value} {self.code}: {self.message}"]
        if self.span and self.line_text is not None:
            text = self.line_text.expandtabs(1)
            gutter = f"{self.span.line:>5} | "
            out.append(gutter + text)
            start = max(self.span.column, 1)
            if self.span.end_line == self.span.line:
                width = max(self.span.end_column - start, 1)
            else:
                width = max(len(text) - start + 1, 1)
            out.append(" " * (len(gutter) - 2) + "| " + " " * (start - 1) + "^" * width)
        if self.hint:
            out.append(f"hint: {self.hint}")
        if self.url:
            out.append(f"see: {self.url}")
        return "\n".join(out)


class PybuildError(Exception):
    """Base of every error pybuild reports to users. Never shown as a traceback."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        diagnostics: tuple[Diagnostic, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.diagnostics = diagnostics


class UsageError(PybuildError):
    """The command line is wrong (bad flag value, missing argument)."""

    exit_code = 2


class DockerfileError(PybuildError):
    """The Dockerfile is invalid: syntax, unknown instruction or flag, bad expansion, bad stage."""

    exit_code = 3

    @classmethod
    def at(
        cls,
        code: str,
        message: str,
        span: Span | None,
        *,
        hint: str | None = None,
        line_text: str | None = None,
    ) -> DockerfileError:
        diag = Diagnostic(code, Severity.ERROR, message, span, hint, None, line_text)
        return cls(message, hint=hint, diagnostics=(diag,))


class BuildFailed(PybuildError):
    """A build step failed (its command exited non-zero, or a source was missing)."""

    exit_code = 1


class ImageError(PybuildError):
    """An image, layer or archive is missing, malformed or hostile."""

    exit_code = 1


class EnvironmentProblem(PybuildError):
    """This machine lacks something pybuild needs (namespaces, a tool, permissions)."""

    exit_code = 4


class RegistryError(PybuildError):
    """A registry or the network failed or refused."""

    exit_code = 5
