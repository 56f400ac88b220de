"""The one loader of the Dockerfile grammar: finds `dockerfile.lark` and builds the Lark
LALR parser once per process (lark itself is imported only on first use).

Where the grammar lives: `grammar/dockerfile.lark` at the top of a source checkout, or
`builder/_grammar/dockerfile.lark` inside an installed wheel (pyproject.toml force-includes
the grammar directory there).

Building the LALR tables from the grammar costs tens of milliseconds per process, most of a
small build's parse time, so the built parser is cached with lark's own `cache` option in the
user's private cache directory (`$XDG_CACHE_HOME/pybuild`, else `~/.cache/pybuild`, mode
0700). Lark keys that file by a sha256 of the grammar text, the options, lark's version and
Python's, and rebuilds (and rewrites it) on any mismatch or unreadable file; when the directory
cannot be made the parser is simply built in memory.
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
        cache = _cache_file()
        if cache is not None:
            options["cache"] = str(cache)
        _parser = Lark(grammar_path().read_text(encoding="utf-8"), **options)
    return _parser


def _cache_file() -> Path | None:
    """Where lark keeps the built parser, or None when there is no private cache directory."""
    from builder.syntax.parsecache import directory

    where = directory()
    return None if where is None else where / "dockerfile-grammar.lark-cache"
