"""Source positions: where in which file a piece of text came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; end_column is exclusive.

    `file` is the path as the user named it (or "-" for standard input).
    """

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def point(cls, file: str, line: int, column: int = 1) -> Span:
        return cls(file, line, column, line, column + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class SourceText:
    """The text of one source file, kept so diagnostics can quote the offending line."""

    name: str
    text: str

    def line(self, number: int) -> str:
        """The text of 1-based line `number` without its line terminator ('' past the end)."""
        lines = self.text.splitlines()
        return lines[number - 1] if 1 <= number <= len(lines) else ""
