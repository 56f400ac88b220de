"""How each instruction splits its argument text: BuildKit's "line parsers", ported rule for
rule (frontend/dockerfile/parser/line_parsers.go, split_command.go).

These are the quirks an LALR grammar cannot express: JSON that fails to decode silently
falls back to shell form, ENV/LABEL switch between `name value` and `name=value …` on the
first word, words keep their quotes and escapes (expansion happens later, in the front
end). Every function works on the raw argument text and returns raw strings plus the offset
of each piece in that text, so the caller can give every piece a source span.
"""

from __future__ import annotations

import json
import re

from builder.syntax.prepass import GO_SPACE

_ASCII_SPACE = "\t\n\v\f\r "
# BuildKit's reWhitespace: ASCII blanks only.
WHITESPACE = re.compile(r"[\t\v\f\r ]+")


class NotStringArray(ValueError):
    """A JSON array whose elements are not all strings (BuildKit refuses, no fallback)."""


def decode_flag(raw: str) -> str:
    """The text of a flag word after BuildKit's extractBuilderFlags: quotes removed and `\\`
    escapes applied (inside quotes too); a trailing lone `\\` is dropped."""
    if "\\" not in raw and '"' not in raw and "'" not in raw:
        return raw
    out: list[str] = []
    quote = ""
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if not quote and ch in "'\"":
            quote = ch
        elif quote and ch == quote:
            quote = ""
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(raw[i])
            else:
                quote = ""
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def split_whitespace(rest: str) -> list[tuple[str, int]]:
    """BuildKit's parseStringsWhitespaceDelimited: split on ASCII blanks (rest is trimmed)."""
    if rest == "":
        return []
    out: list[tuple[str, int]] = []
    start = 0
    for m in WHITESPACE.finditer(rest):
        out.append((rest[start:m.start()], start))
        start = m.end()
    out.append((rest[start:], start))
    return out


def parse_words(rest: str, escape: str) -> list[tuple[str, int]]:
    """BuildKit's parseWords: blank-separated words where quotes group blanks and the escape
    character protects the next character; quotes and escapes stay in the words."""
    words: list[tuple[str, int]] = []
    word: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    quote = ""
    blank_ok = False
    start = 0
    pos, n = 0, len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if ch in GO_SPACE:
                pos += 1
                continue
            phase = in_word
            start = pos
        if pos == n:
            if blank_ok or word:
                words.append(("".join(word), start))
            break
        if phase == in_word:
            if ch in GO_SPACE:
                phase = in_spaces
                if blank_ok or word:
                    words.append(("".join(word), start))
                word = []
                blank_ok = False
                pos += 1
                continue
            if ch == "'" or ch == '"':
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the very end is dropped
                word.append(ch)
                pos += 1
                ch = rest[pos]
            word.append(ch)
            pos += 1
            continue
        # in_quote
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            word.append(ch)
            ch = rest[pos]
        word.append(ch)
        pos += 1
    return words


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")  # Go's decoder refuses NaN/Infinity


def _go_string(s: str) -> str:
    # Go replaces an invalid \ud800-style escape by U+FFFD; Python would keep a lone
    # surrogate that cannot be encoded later.
    if any("\ud800" <= c <= "\udfff" for c in s):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in s)
    return s


def parse_json(rest: str) -> list[str] | None:
    """BuildKit's parseJSON: the strings of a JSON array, or None when `rest` is not one
    (the caller falls back to shell form). Raises NotStringArray for valid JSON with a
    non-string element."""
    rest = rest.lstrip(GO_SPACE)
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise NotStringArray(
            "when using JSON array syntax, arrays must be comprised of strings only")
    return [_go_string(v) for v in value]


class NameValueError(ValueError):
    """ENV/LABEL text that is neither `name value` nor a list of `name=value` words."""

    def __init__(self, message: str, offset: int, missing_value: bool) -> None:
        super().__init__(message)
        self.offset = offset
        self.missing_value = missing_value


def parse_name_val(rest: str, keyword: str, escape: str) -> list[tuple[str, str, str, int]]:
    """BuildKit's parseNameVal for ENV and LABEL: (name, value, separator, offset) per pair.

    The separator is "=" for `name=value` words and "" for the legacy `name value` form,
    where the value is the whole rest of the line."""
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0][0]:
        parts = WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise NameValueError(f"{keyword} must have two arguments", 0, True)
        return [(parts[0], parts[1], "", 0)]
    pairs: list[tuple[str, str, str, int]] = []
    for word, offset in words:
        if "=" not in word:
            raise NameValueError(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value",
                offset, False)
        name, value = word.split("=", 1)
        pairs.append((name, value, "=", offset))
    return pairs


def split_health(rest: str) -> tuple[str, str, int] | None:
    """BuildKit's parseHealthConfig: the type word (CMD, NONE, …), the command text after it
    and the command's offset; None when there is no argument."""
    # BuildKit tests unicode.IsSpace on single *bytes*; for ASCII text that is exactly the
    # ASCII blanks (non-ASCII spaces are not separators here, see dockerfile-support.md).
    sep = 0
    n = len(rest)
    while sep < n and rest[sep] not in _ASCII_SPACE:
        sep += 1
    if sep == 0:
        return None
    nxt = sep
    while nxt < n and rest[nxt] in _ASCII_SPACE:
        nxt += 1
    return rest[:sep], rest[nxt:], nxt


def go_quote(s: str) -> str:
    """Go's strconv.Quote: double-quoted, with Go escapes for non-printable characters."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif " " <= ch < "\x7f":
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ch.isprintable() and not ("\ud800" <= ch <= "\udfff"):
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}
