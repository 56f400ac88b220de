"""Shell-word expansion and word splitting with BuildKit's rules (frontend/dockerfile/shell/lex.go).

Public API (also used by the linter):

- `expand(word, env, escape="\\\\") -> str`: process quotes, escapes and `$VAR`/`${VAR…}` in one
  word, as BuildKit's `ProcessWord` (spaces between words are kept).
- `expand_words(text, env, escape="\\\\") -> list[str]`: the same, then split into words on
  unquoted whitespace (unquoted variable values are field-split), as `ProcessWords`.
- `ShellLexer(escape, raw_quotes=False, skip_unset=False).process(word, env) -> Expansion`:
  both results at once plus the variable names that were found (`matched`) and not found
  (`unmatched`) — what a linter needs for undefined-variable checks.

`env` maps names to values; names compare case-sensitively (BuildKit on Linux). Supported
forms: `$name`, `${name}`, positional/special parameters (`$1`, `$@`, … always empty), and the
modifiers `:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%` `/` `//`. Anything else (`${}`, `${:x}`,
`${v:=x}`, unterminated quotes or braces) raises `ExpansionError`, whose message matches
BuildKit's (`failed to process "<word>": <reason>`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from builder.errors import DockerfileError

_EOF = ""


class ExpansionError(DockerfileError):
    """Variable expansion failed (bad substitution, `${v:?}` on an unset/empty variable,
    unterminated quote). Code `DF-EXPAND` when the planner attaches a span."""

    code = "DF-EXPAND"


@dataclass(slots=True)
class Expansion:
    """The result of processing one word: the joined `result`, the split `words`, and which
    variable names were looked up and found / not found (in first-seen order)."""

    result: str
    words: list[str]
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


class _Fail(Exception):
    """Internal: an expansion failure, wrapped with the word by ShellLexer.process."""


# Go unicode.IsSpace: Latin-1 '\t\n\v\f\r ', U+0085, U+00A0, and the White_Space property.
_SPACES = frozenset("\t\n\v\f\r \u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000"
                    + "".join(chr(c) for c in range(0x2000, 0x200B)))
_SPACE_RUN = re.compile("[" + re.escape("".join(sorted(_SPACES))) + "]+")


def _is_space(ch: str) -> bool:
    return ch in _SPACES


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"  # Go unicode.IsDigit


def _is_special_param(ch: str) -> bool:
    # POSIX special parameters (XCU 2.5.2); BuildKit expands them to "".
    return ch in "@*#?-$!0"


class _Words:
    """BuildKit's wordsStruct: accumulates the field-split words."""

    __slots__ = ("word", "words", "in_word")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_space(ch):
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def get(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _NoWords(_Words):
    """Stands in for _Words when only the joined result is wanted (saves the per-character
    word bookkeeping)."""

    __slots__ = ()

    def add_char(self, ch: str) -> None:
        pass

    def add_raw_char(self, ch: str) -> None:
        pass

    def add_string(self, text: str) -> None:
        pass

    def add_raw_string(self, text: str) -> None:
        pass


class ShellLexer:
    """BuildKit's `shell.Lex`. `raw_quotes` keeps quote characters in the output;
    `skip_unset` leaves references to unset variables as written (both off for Dockerfile
    instructions); `skip_quotes` makes quotes ordinary characters (heredoc bodies).
    Not thread-safe for one instance; create one per thread."""

    def __init__(self, escape: str = "\\", *, raw_quotes: bool = False,
                 skip_unset: bool = False, skip_quotes: bool = False) -> None:
        if len(escape) != 1:
            raise ValueError(f"escape must be one character, got {escape!r}")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.skip_unset = skip_unset
        self.skip_quotes = skip_quotes
        self._text = ""
        self._pos = 0
        self._env: Mapping[str, str] = {}
        self._raw_escapes = False
        self._words_cls: type[_Words] = _Words
        self._matched: dict[str, None] = {}
        self._unmatched: dict[str, None] = {}

    # -- public ------------------------------------------------------------------------------

    def process(self, word: str, env: Mapping[str, str], *, words: bool = True) -> Expansion:
        """Expand `word` with `env`; raises ExpansionError (message as BuildKit's).
        With `words=False` the result's `words` is left empty (faster)."""
        if not any(c in word for c in ("$", "'", '"', self.escape)):
            # Nothing to substitute, unquote or unescape: the word as is, split on spaces.
            return Expansion(word, [w for w in _SPACE_RUN.split(word) if w] if words else [])
        self._text, self._pos, self._env = word, 0, env
        self._words_cls = _Words if words else _NoWords
        self._raw_escapes = False
        self._matched, self._unmatched = {}, {}
        try:
            result, split = self._process_stop_on(_EOF, False)
        except _Fail as fail:
            raise ExpansionError(f"failed to process {_go_quote(word)}: {fail}") from None
        return Expansion(result, split, list(self._matched), list(self._unmatched))

    # -- scanner -----------------------------------------------------------------------------

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else _EOF

    def _next(self) -> str:
        if self._pos < len(self._text):
            ch = self._text[self._pos]
            self._pos += 1
            return ch
        return _EOF

    # -- lexer (mirrors lex.go function by function) -----------------------------------------

    def _process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = self._words_cls()
        saved = self._raw_escapes
        self._raw_escapes = raw_escapes
        try:
            while self._peek() != _EOF:
                ch = self._peek()
                if stop != _EOF and ch == stop:
                    self._next()
                    return "".join(result), words.get()
                if ch == "$":
                    tmp = self._process_dollar()
                    result.append(tmp)
                    words.add_string(tmp)
                elif ch == "'" and not self.skip_quotes:
                    tmp = self._process_single_quote()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                elif ch == '"' and not self.skip_quotes:
                    tmp = self._process_double_quote()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                else:
                    ch = self._next()
                    if ch == self.escape:
                        if self._raw_escapes:
                            words.add_raw_char(ch)
                            result.append(ch)
                        # The escape character escapes the next one, except at the end.
                        ch = self._next()
                        if ch == _EOF:
                            break
                        words.add_raw_char(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop != _EOF:
                raise _Fail(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get()
        finally:
            self._raw_escapes = saved

    def _process_single_quote(self) -> str:
        # POSIX: everything between single quotes is literal; a single quote cannot be escaped.
        out: list[str] = []
        ch = self._next()
        if self.raw_quotes:
            out.append(ch)
        while True:
            ch = self._next()
            if ch == _EOF:
                raise _Fail("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def _process_double_quote(self) -> str:
        # POSIX: inside double quotes only $ and the escape character are special; the escape
        # only escapes `"`, `$` and itself (otherwise it stays literal).
        out: list[str] = []
        ch = self._next()
        if self.raw_quotes:
            out.append(ch)
        while True:
            peek = self._peek()
            if peek == _EOF:
                raise _Fail("unexpected end of statement while looking for matching double-quote")
            if peek == '"':
                ch = self._next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if peek == "$":
                out.append(self._process_dollar())
                continue
            ch = self._next()
            if ch == self.escape:
                if self._raw_escapes:
                    out.append(ch)
                nxt = self._peek()
                if nxt == _EOF:
                    continue  # an escape at the end of the word is dropped
                if nxt in ('"', "$", self.escape):
                    ch = self._next()
            out.append(ch)

    def _process_dollar(self) -> str:
        self._next()  # the $
        if self._peek() != "{":
            name = self._process_name()
            if not name:
                return "$"
            value, found = self._get_env(name)
            if not found and self.skip_unset:
                return "$" + name
            return value

        self._next()  # the {
        peek = self._peek()
        if peek == _EOF:
            raise _Fail("syntax error: missing '}'")
        if peek in "{}:":
            raise _Fail("syntax error: bad substitution")
        name = self._process_name()
        ch = self._next()
        chs = ch
        null_is_unset = False

        if ch == "}":
            value, found = self._get_env(name)
            if not found and self.skip_unset:
                return "${" + name + "}"
            return value
        if ch in (":", "+", "-", "?", "#", "%"):
            if ch == ":":
                null_is_unset = True
                ch = self._next()
                chs += ch
            word = self._operand("}", ch in ("#", "%"), "syntax error: missing '}'")
            value, found = self._get_env(name)
            if self.skip_unset and not found:
                return "${" + name + chs + word + "}"
            empty = not found or (null_is_unset and value == "")
            if ch == "-":
                return word if empty else value
            if ch == "+":
                return "" if empty else word
            if ch == "?":
                if not found:
                    raise _Fail(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise _Fail(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            if ch in ("%", "#"):
                # %/# remove the shortest match, %%/## the longest.
                greedy = word[:1] == ch
                if greedy:
                    word = word[1:]
                if ch == "%":
                    return _trim_suffix(word, value, greedy)
                return _trim_prefix(word, value, greedy)
            raise _Fail(f"unsupported modifier ({chs}) in substitution")
        if ch == "/":
            replace_all = self._peek() == "/"
            if replace_all:
                self._next()
            pattern = self._operand("/", True, "syntax error: missing '/' in ${}")
            replacement = self._operand("}", True, "syntax error: missing '}'")
            value, found = self._get_env(name)
            if self.skip_unset and not found:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            regex = _shell_pattern_regex(pattern, greedy=True, anchored=False)
            if replace_all:
                return _go_replace_all(regex, value, replacement)
            m = regex.search(value)
            if m:
                value = value[: m.start()] + replacement + value[m.end():]
            return value
        raise _Fail(f"unsupported modifier ({chs}) in substitution")

    def _operand(self, stop: str, raw_escapes: bool, missing: str) -> str:
        try:
            word, _ = self._process_stop_on(stop, raw_escapes)
        except _Fail:
            if self._peek() == _EOF:
                raise _Fail(missing) from None
            raise
        return word

    def _process_name(self) -> str:
        # A name is letters, digits and `_`; a leading digit reads a positional parameter
        # (all digits), a special parameter is one character.
        name: list[str] = []
        while (ch := self._peek()) != _EOF:
            if not name and _is_digit(ch):
                while (c := self._peek()) != _EOF and _is_digit(c):
                    name.append(self._next())
                return "".join(name)
            if not name and _is_special_param(ch):
                return self._next()
            if not (ch.isalpha() or _is_digit(ch) or ch == "_"):
                break
            name.append(self._next())
        return "".join(name)

    def _get_env(self, name: str) -> tuple[str, bool]:
        if name in self._env:
            self._matched.setdefault(name, None)
            return self._env[name], True
        self._unmatched.setdefault(name, None)
        return "", False


# ------------------------------------------------------------------ shell patterns (# % /)

_REGEX_SPECIAL = set("[]{}.+()|^$")


def _shell_pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """BuildKit's convertShellPatternToRegex: `*` any string (shortest unless greedy), `?` one
    character, `\\` escapes `*`, `?`, `\\` (and is dropped before `}` and `/`); no brackets."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i, n = 0, len(pattern)
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            nxt = pattern[i] if i < n else ""
            if nxt in ("}", "/"):
                continue
            out.append("\\")
            i += 1
            if nxt not in ("*", "?", "\\"):
                shown = nxt if nxt else "\\x00"
                raise _Fail(f"invalid pattern ({pattern}) in substitution: "
                            f"invalid escape '\\{shown}'")
            out.append(nxt)
            continue
        if tok in _REGEX_SPECIAL:
            out.append("\\" + tok)
        else:
            out.append(re.escape(tok) if not tok.isalnum() else tok)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _shell_pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    # Reverse a pattern keeping each `\x` escape pair in order (a\*c -> c\*a).
    chars = list(pattern)
    out = [""] * len(chars)
    last = len(chars) - 1
    i = 0
    while i <= last:
        tok = chars[i]
        j = last - i
        if tok == "\\" and i != last:
            out[j - 1] = tok
            out[j] = chars[i + 1]
            i += 2
        else:
            out[j] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexes cannot find the shortest rightmost match: reverse both and trim a prefix.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


_TEMPLATE_NAME = re.compile(r"\$(?:\$|([A-Za-z0-9_]+)|\{([A-Za-z0-9_]+)\})")


def _go_template(replacement: str) -> str:
    """Go's Regexp.Expand for a pattern without groups: `$$` is `$`, `$name`/`${name}` are
    empty (no such group), a malformed `$` stays literal."""
    return _TEMPLATE_NAME.sub(lambda m: "$" if m.group(0) == "$$" else "", replacement)


def _go_replace_all(regex: re.Pattern[str], value: str, replacement: str) -> str:
    """Go's ReplaceAllString: like re.sub, except an empty match right after a previous match
    is skipped, and the replacement is a Go template."""
    repl = _go_template(replacement)
    out: list[str] = []
    pos = 0
    last_end = -1
    search_at = 0
    while search_at <= len(value):
        m = regex.search(value, search_at)
        if not m:
            break
        start, end = m.span()
        if not (start == end and start == last_end):
            out.append(value[pos:start])
            out.append(repl)
            pos = end
            last_end = end
        search_at = end + 1 if end == start else end
    out.append(value[pos:])
    return "".join(out)


def _go_quote(text: str) -> str:
    """Go's %q for an error message (close enough: escapes quotes, backslashes, controls)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ------------------------------------------------------------------ convenience API


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word (quotes removed, escapes processed, variables substituted); raises
    ExpansionError."""
    return ShellLexer(escape).process(word, env, words=False).result


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand `text` and split it into words on unquoted whitespace; raises ExpansionError."""
    return ShellLexer(escape).process(text, env).words
