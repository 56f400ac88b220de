"""Render diagnostics and errors for people: `file:line:col: severity CODE: message`, the line,
a caret under the span, and a hint."""

from __future__ import annotations

from typing import TextIO

from builder.errors import Diagnostic, PybuildError


def format_diagnostic(diag: Diagnostic) -> str:
    """The multi-line text of one diagnostic (no trailing newline)."""
    where = f"{diag.span}: " if diag.span else ""
    out = [f"{where}{diag.severity.value} {diag.code}: {diag.message}"]
    if diag.span and diag.line_text is not None:
        text = diag.line_text.expandtabs(1)
        gutter = f"{diag.span.line:>5} | "
        out.append(gutter + text)
        start = max(diag.span.column, 1)
        if diag.span.end_line == diag.span.line:
            width = max(diag.span.end_column - start, 1)
        else:
            width = max(len(text) - start + 1, 1)
        out.append(" " * (len(gutter) - 2) + "| " + " " * (start - 1) + "^" * width)
    if diag.hint:
        out.append(f"hint: {diag.hint}")
    if diag.url:
        out.append(f"see: {diag.url}")
    return "\n".join(out)


def print_error(err: PybuildError, stream: TextIO) -> None:
    """Print a PybuildError: its diagnostics when it has any, else `error: message` + hint."""
    if err.diagnostics:
        for diag in err.diagnostics:
            print(format_diagnostic(diag), file=stream)
        return
    print(f"error: {err.message}", file=stream)
    if err.hint:
        print(f"hint: {err.hint}", file=stream)
