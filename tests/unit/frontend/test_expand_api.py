"""The expand library API beyond the conformance vectors: escape characters, lexer options,
matched/unmatched names, and the pattern operators' corners."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError
from builder.frontend.expand import ExpansionError, ShellLexer, expand, expand_words


def test_backtick_escape() -> None:
    assert expand("a`$B", {"B": "x"}, escape="`") == "a$B"
    assert expand("a\\$B", {"B": "x"}, escape="`") == "a\\x"
    assert expand_words("a` b c", {}, escape="`") == ["a b", "c"]


def test_expansion_error_is_a_dockerfile_error_with_buildkit_message() -> None:
    with pytest.raises(DockerfileError) as err:
        expand("${X:?must be set}", {})
    assert isinstance(err.value, ExpansionError)
    assert err.value.message == 'failed to process "${X:?must be set}": X: must be set'


def test_matched_and_unmatched_names_in_first_seen_order() -> None:
    r = ShellLexer().process("$B ${A:-$C} $B $D", {"A": "1", "B": "2"})
    assert r.result == "2 1 2 "
    # the default word is processed before A is looked up, as BuildKit does: C is reported
    assert r.matched == ["B", "A"] and r.unmatched == ["C", "D"]


def test_skip_unset_and_raw_quotes() -> None:
    lex = ShellLexer(raw_quotes=True, skip_unset=True)
    assert lex.process("'$A' \"$B\" ${C:-x} $D", {"B": "b"}).result == "'$A' \"b\" ${C:-x} $D"


def test_skip_quotes_keeps_quotes_literal() -> None:
    assert ShellLexer(skip_quotes=True).process("'$A' \"$A\"", {"A": "1"}).result == "'1' \"1\""


@pytest.mark.parametrize("word,expected", [
    ("${V#*/}", "b/c.tar.gz"),
    ("${V##*/}", "c.tar.gz"),
    ("${V%.*}", "a/b/c.tar"),
    ("${V%%.*}", "a/b/c"),
    ("${V/b/X}", "a/X/c.tar.gz"),
    ("${V//./_}", "a/b/c_tar_gz"),
    ("${V//[/x}", "a/b/c.tar.gz"),  # brackets are literal characters
    ("${V/#a/Z}", "a/b/c.tar.gz"),  # no anchors: `#` is a literal
    ("${E//*/x}", "x"),  # Go's regexp matches the empty value once
    ("${V//*/x}", "x"),  # Go skips the empty match right after a match
    ("${V/\\//_}", "a_b/c.tar.gz"),
])
def test_pattern_operators(word: str, expected: str) -> None:
    assert expand(word, {"V": "a/b/c.tar.gz", "E": ""}) == expected


def test_bad_pattern_escape_is_an_error() -> None:
    with pytest.raises(ExpansionError, match="invalid escape"):
        expand("${V#\\x}", {"V": "a"})
