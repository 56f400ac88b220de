"""Small helpers for the lint unit tests."""

from __future__ import annotations

from builder.lint import LintConfig, lint_text


def codes(text: str, config: LintConfig | None = None) -> list[tuple[str, int]]:
    """(code, line) of every finding for `text`, in report order."""
    return [(f.code, f.line) for f in lint_text(text, "Dockerfile", config)]


def has(text: str, code: str, config: LintConfig | None = None) -> bool:
    return any(c == code for c, _ in codes(text, config))
