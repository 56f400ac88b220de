"""Print errors for people: their diagnostics (`Diagnostic.render`), else `error: message` and
a hint."""

from __future__ import annotations

from typing import TextIO

from builder.errors import PybuildError


def print_error(err: PybuildError, stream: TextIO) -> None:
    """Print a PybuildError: its diagnostics when it has any, else `error: message` + hint."""
    if err.diagnostics:
        for diag in err.diagnostics:
            print(diag.render(), file=stream)
        return
    print(f"error: {err.message}", file=stream)
    if err.hint:
        print(f"hint: {err.hint}", file=stream)
