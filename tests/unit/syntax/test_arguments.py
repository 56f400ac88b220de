"""BuildKit's line parsers, ported: words, name=value pairs, JSON-or-shell, Go quoting."""

from __future__ import annotations

import pytest

from builder.syntax import arguments as a


@pytest.mark.parametrize("raw, decoded", [
    ("--from=x", "--from=x"),
    ('--mount="type=bind,target=/a b"', "--mount=type=bind,target=/a b"),
    ("--a='x'\\ y", "--a=x y"),
    ('--a="x\\"y"', '--a=x"y'),
    ("--a=b\\", "--a=b"),
    ('--""', "--"),
])
def test_decode_flag(raw: str, decoded: str) -> None:
    assert a.decode_flag(raw) == decoded


def test_parse_words_keeps_quotes_and_escapes() -> None:
    words = a.parse_words('a="b c" d=e\\ f  g=\'h\\\'', "\\")
    assert words == [('a="b c"', 0), ("d=e\\ f", 8), ("g='h\\'", 16)]


def test_parse_words_backtick_escape() -> None:
    assert [w for w, _ in a.parse_words("a=b` c d", "`")] == ["a=b` c", "d"]


def test_parse_words_unicode_space_separates() -> None:
    assert [w for w, _ in a.parse_words("a\u00a0b", "\\")] == ["a", "b"]


def test_name_val_forms() -> None:
    assert a.parse_name_val("name  value with  spaces", "ENV", "\\") == [
        ("name", "value with  spaces", "", 0)]
    assert a.parse_name_val('a=1 b="2 3"', "ENV", "\\") == [
        ("a", "1", "=", 0), ("b", '"2 3"', "=", 4)]
    with pytest.raises(a.NameValueError, match="LABEL must have two arguments"):
        a.parse_name_val("lonely", "LABEL", "\\")
    with pytest.raises(a.NameValueError, match='can\'t find = in "b"'):
        a.parse_name_val("a=1 b", "ENV", "\\")


@pytest.mark.parametrize("text, expected", [
    ('["a", "b"]', ["a", "b"]),
    ("  [ ]", []),
    ('["a"] trailing', None),  # Go's json.Unmarshal refuses trailing data: shell form
    ("[NaN]", None),  # Go refuses NaN: shell form
    ("['single']", None),
    ("not json", None),
    ('["\\ud800"]', ["\ufffd"]),
    ("[" * 5000, None),
])
def test_parse_json(text: str, expected: list[str] | None) -> None:
    assert a.parse_json(text) == expected


@pytest.mark.parametrize("text", ['["a", 1]', '["a", ["b"]]', "[null]", '[{"a": "b"}]'])
def test_parse_json_non_strings_are_refused(text: str) -> None:
    with pytest.raises(a.NotStringArray):
        a.parse_json(text)


def test_split_health() -> None:
    assert a.split_health("CMD  curl -f x") == ("CMD", "curl -f x", 5)
    assert a.split_health("NONE") == ("NONE", "", 4)
    assert a.split_health("") is None


@pytest.mark.parametrize("s, quoted", [
    ("plain", '"plain"'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("\t\n\r\a\b\f\v", '"\\t\\n\\r\\a\\b\\f\\v"'),
    ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
    ("♥ é", '"♥ é"'),
    ("\u00a0\u200b", '"\\u00a0\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),
    ("\udcff", '"\\xff"'),
])
def test_go_quote(s: str, quoted: str) -> None:
    assert a.go_quote(s) == quoted
