"""The one loader of the Dockerfile grammar: finds `dockerfile.lark` and builds the Lark
LALR parser once per process (lark itself is imported only on first use).

Where the grammar lives: `grammar/dockerfile.lark` at the top of a source checkout, or
`builder/_grammar/dockerfile.lark` inside an installed wheel (pyproject.toml force-includes
the grammar directory there).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lark import Lark

GRAMMAR_NAME = "dockerfile.lark"
_PACKAGE = Path(__file__).resolve().parent.parent  # .../builder

_parser: Lark | None = None


def grammar_path() -> Path:
    """The grammar file: the installed copy when present, else the checkout's."""
    for candidate in (_PACKAGE / "_grammar" / GRAMMAR_NAME,
                      _PACKAGE.parent / "grammar" / GRAMMAR_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{GRAMMAR_NAME} not found in {_PACKAGE / '_grammar'} or {_PACKAGE.parent / 'grammar'}")


def parser() -> Lark:
    """The LALR(1) parser with the contextual lexer, built on first use and then reused."""
    global _parser
    if _parser is None:
        from lark import Lark

        options: dict[str, Any] = {
            "parser": "lalr",
            "lexer": "contextual",
            "maybe_placeholders": False,
        }
        _parser = Lark(grammar_path().read_text(encoding="utf-8"), **options)
    return _parser
