"""The grammar loader: finds the .lark file in a checkout or a wheel, builds once, lazily."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from builder.syntax import grammar
from tests.conftest import ROOT


def test_checkout_grammar_is_found() -> None:
    assert grammar.grammar_path() == ROOT / "grammar" / "dockerfile.lark"


def test_installed_copy_wins(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "builder"
    (pkg / "_grammar").mkdir(parents=True)
    shutil.copy(ROOT / "grammar" / "dockerfile.lark", pkg / "_grammar" / "dockerfile.lark")
    monkeypatch.setattr(grammar, "_PACKAGE", pkg)
    assert grammar.grammar_path() == pkg / "_grammar" / "dockerfile.lark"


def test_parser_is_built_once() -> None:
    assert grammar.parser() is grammar.parser()


def test_lark_is_imported_lazily() -> None:
    code = "import sys, builder.syntax, builder.cli.app; print('lark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_every_rule_and_terminal_is_commented() -> None:
    lines = (ROOT / "grammar" / "dockerfile.lark").read_text().splitlines()
    definition = re.compile(r"^[?!]?[A-Za-z_][A-Za-z0-9_]*(\.\d+)?\s*:")
    for i, line in enumerate(lines):
        if definition.match(line):
            assert lines[i - 1].startswith("//"), f"line {i + 1} has no comment: {line}"


def test_grammar_is_lalr_with_contextual_lexer() -> None:
    p = grammar.parser()
    assert p.options.parser == "lalr" and p.options.lexer == "contextual"
