"""The line scanner in front of the grammar: byte-order mark, parser directives, comments,
line continuations and here-document bodies, read exactly as BuildKit's parser reads lines.

This is the part of Dockerfile syntax that is not context-free: the escape character is
chosen by a directive, continuation lines may be interleaved with comments and blank lines,
and a here-document body is only a body because the instruction *before* it was classified
as RUN/COPY/ADD in shell form. BuildKit reference: frontend/dockerfile/parser/parser.go
(`Parse`, `processLine`, `trimContinuationCharacter`, `heredocsFromLine`) and
directives.go (`DirectiveParser`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from builder.errors import DockerfileError
from builder.source import Span
from builder.syntax import codes
from builder.syntax.nodes import Comment, Directive

# Go's unicode.IsSpace: the Latin-1 spaces plus the Unicode White_Space property. (Python's
# str.isspace also counts \x1c-\x1f, which Go does not, so we never use it.)
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# BuildKit's directive regexp is `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (after the `#`
# and blanks are cut), where Go's `\s` is ASCII [\t\n\f\r ] only. Python's backtracking
# engine would take quadratic time on its lazy `(.+?)\s*$` for long blank runs (Go's RE2
# is linear), so only the name part is a regexp and the value is cut with str.strip.
_DIRECTIVE_NAME = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=")
_RE_SPACE = "\t\n\f\r "


def match_directive(text: str) -> tuple[str, str] | None:
    """(name, value) when `text` (the comment after `#` and leading blanks) has the shape of
    a parser directive, exactly as BuildKit's regexp decides."""
    m = _DIRECTIVE_NAME.match(text)
    if m is None:
        return None
    rest = text[m.end():]
    value = rest.strip(_RE_SPACE)
    if not value:
        if not rest:
            return None
        value = rest[-1]  # only blanks after `=`: the lazy `(.+?)` takes the last one
    return m.group(1), value
_VALID_DIRECTIVES = ("syntax", "escape", "check")

# bufio.Scanner's default limit: a longer physical line makes BuildKit fail.
MAX_LINE_BYTES = 64 * 1024


def _is_comment(text: str) -> bool:
    stripped = text.lstrip(GO_SPACE)
    return stripped[:1] == "#"


def _trim_newline(text: str) -> str:
    return text.rstrip("\r\n")


@dataclass(slots=True)
class HeredocBody:
    """The body lines of one here-document as read from the file."""

    content: str  # every body line with its line ending, as BuildKit stores it
    terminator: str  # the raw terminator line (with its line ending)
    start_line: int  # first body line (1-based); == end_line + 1 when the body is empty
    end_line: int  # the terminator's line


@dataclass(slots=True)
class LogicalLine:
    """One instruction: physical lines joined after continuations, comments dropped."""

    joined: str  # continuation-joined text (first line left-trimmed), untrimmed at the end
    start_line: int
    end_line: int
    # (offset in `joined`, physical line number, 0-based column in that line) per piece
    pieces: list[tuple[int, int, int]] = field(default_factory=list)
    empty_lines: list[int] = field(default_factory=list)  # blank lines inside continuations
    _starts: list[int] = field(default_factory=list, repr=False)  # piece offsets (cache)

    def locate(self, offset: int) -> tuple[int, int]:
        """The (line, 1-based column) of character `offset` of `joined`."""
        if len(self._starts) != len(self.pieces):
            self._starts = [p[0] for p in self.pieces]
        i = bisect_right(self._starts, offset) - 1
        start, line, col0 = self.pieces[max(i, 0)]
        return line, col0 + (offset - start) + 1


class Scanner:
    """Reads a Dockerfile's text line by line the way BuildKit's parser does.

    Call `next_instruction()` until it returns None; after each instruction the caller may
    call `read_heredoc()` once per here-document the instruction owns (in order).
    `directives`, `comments` and `escape` are filled as the scan goes.
    """

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        if text.startswith("\ufeff"):
            text = text[1:]
        # bufio.Scanner with BuildKit's scanLines: split on "\n" only, keep the ending.
        lines = text.split("\n")
        self.lines = [ln + "\n" for ln in lines[:-1]]
        if lines[-1]:
            self.lines.append(lines[-1])
        self.pos = 0  # index of the next physical line to read
        self.escape = "\\"
        self.directives: list[Directive] = []
        self.comments: list[Comment] = []
        self._directives_done = False
        self._seen: set[str] = set()

    # -- errors ----------------------------------------------------------------------

    def line_text(self, number: int) -> str:
        """Physical line `number` (1-based) without its line ending."""
        if 1 <= number <= len(self.lines):
            return _trim_newline(self.lines[number - 1])
        return ""

    def error(self, code: str, message: str, line: int, column: int = 1,
              end_column: int | None = None, hint: str | None = None) -> DockerfileError:
        text = self.line_text(line)
        if end_column is None:
            end_column = max(len(text) + 1, column + 1)
        span = Span(self.path, line, column, line, end_column)
        return DockerfileError.at(code, message, span, hint=hint, line_text=text)

    # -- physical lines --------------------------------------------------------------

    def _read(self) -> tuple[str, int] | None:
        if self.pos >= len(self.lines):
            return None
        raw = self.lines[self.pos]
        self.pos += 1
        if (len(raw) > MAX_LINE_BYTES // 4
                and len(raw.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES):
            raise self.error(codes.LINE_TOO_LONG,
                             f"line is longer than the {MAX_LINE_BYTES - 1} bytes BuildKit accepts",
                             self.pos, 1, 2, hint="split the line with line continuations")
        return raw, self.pos

    def _directive(self, token: str, number: int, column: int) -> bool:
        """BuildKit's DirectiveParser.ParseLine: True when `token` is a parser directive."""
        if self._directives_done:
            return False
        if not token.startswith("#"):
            self._directives_done = True
            return False
        found = match_directive(token[1:].lstrip(GO_SPACE))
        if found is None or found[0].lower() not in _VALID_DIRECTIVES:
            self._directives_done = True
            return False
        name, value = found[0].lower(), found[1]
        if name in self._seen:
            raise self.error(codes.DUPLICATE_DIRECTIVE,
                             f"only one {name} parser directive can be used", number, column,
                             hint="remove the repeated directive")
        self._seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise self.error(codes.BAD_ESCAPE,
                                 f"invalid escape token '{value}' does not match ` or \\",
                                 number, column, hint="use `# escape=\\` or `# escape=``")
            self.escape = value
        span = Span(self.path, number, column, number, column + len(token))
        self.directives.append(Directive(name=name, value=value, span=span))
        return True

    def _trim_continuation(self, text: str) -> tuple[str, bool]:
        """Remove a trailing continuation escape; True when the instruction ends here.

        Same result as BuildKit's regexp `([^E])E[ \\t]*$|^E[ \\t]*$` → `$1` (E = escape),
        without the regexp: this runs for every physical line."""
        body = text.rstrip(" \t")
        if not body.endswith(self.escape):
            return text, True
        body = body[:-1]
        if body and body[-1] == self.escape:  # an escaped escape is a literal character
            return text, True
        return body, False

    def _note_comment(self, raw: str, number: int) -> None:
        token = _trim_newline(raw)
        stripped = token.lstrip(GO_SPACE)
        col = len(token) - len(stripped) + 1
        span = Span(self.path, number, col, number, len(token) + 1)
        self.comments.append(Comment(text=stripped[1:], span=span))

    # -- instructions ----------------------------------------------------------------

    def next_instruction(self) -> LogicalLine | None:
        """The next logical instruction line, or None at the end of the file."""
        while True:
            got = self._read()
            if got is None:
                return None
            raw, number = got
            token = _trim_newline(raw)
            stripped = token.lstrip(GO_SPACE)
            indent = len(token) - len(stripped)
            is_directive = self._directive(stripped, number, indent + 1)
            if stripped[:1] == "#":
                if not is_directive:
                    self._note_comment(raw, number)
                stripped = ""  # processLine drops comment lines
            text, done = self._trim_continuation(stripped)
            if done and text == "":
                continue  # blank line or comment
            logical = LogicalLine(joined=text, start_line=number, end_line=number,
                                  pieces=[(0, number, indent)])
            parts = [text]
            length = len(text)
            while not done:
                got = self._read()
                if got is None:
                    break
                raw, number = got
                logical.end_line = number
                if _is_comment(raw):
                    self._note_comment(raw, number)
                    continue  # comments inside a continuation are skipped
                token = _trim_newline(raw)  # continuation lines keep their indentation
                if token.lstrip(GO_SPACE) == "":
                    logical.empty_lines.append(number)
                    continue
                token, done = self._trim_continuation(token)
                logical.pieces.append((length, number, 0))
                parts.append(token)
                length += len(token)
            logical.joined = "".join(parts)
            return logical

    def read_heredoc(self, name: str, chomp: bool, owner: LogicalLine) -> HeredocBody:
        """Read one here-document body up to its terminator line (BuildKit compares the
        line without its ending, and without leading tabs for `<<-`)."""
        first = self.pos + 1
        content: list[str] = []
        while True:
            got = self._read()
            if got is None:
                raise self.error(codes.UNTERMINATED_HEREDOC,
                                 f"unterminated heredoc: no line `{name}` ends the "
                                 f"here-document started here", owner.start_line,
                                 owner.pieces[0][2] + 1,
                                 hint=f"add a line containing only {name} after the body")
            raw, number = got
            owner.end_line = number
            candidate = _trim_newline(raw)
            if chomp:
                candidate = candidate.lstrip("\t")
            if candidate == name:
                return HeredocBody("".join(content), raw, first, number)
            content.append(raw)


# -- here-document markers ---------------------------------------------------------------

_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)([^<]*)")


@dataclass(frozen=True, slots=True)
class HeredocMarker:
    name: str
    expand: bool
    chomp: bool
    file_descriptor: int


def _shell_words(line: str) -> list[str] | None:
    """Split `line` into raw words as BuildKit's shell lexer does with RawQuotes and
    RawEscapes (quotes and backslashes kept). None when a quote is unterminated (BuildKit
    then finds no heredocs on the line)."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch in GO_SPACE:
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        in_word = True
        if ch == "'":
            j = line.find("'", i + 1)
            if j < 0:
                return None
            word.append(line[i:j + 1])
            i = j + 1
        elif ch == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" and j + 1 < n and line[j + 1] in '"$\\' else 1
            if j >= n:
                return None
            word.append(line[i:j + 1])
            i = j + 1
        elif ch == "\\":
            word.append(line[i:i + 2])
            i += 2
        else:
            word.append(ch)
            i += 1
    if in_word:
        words.append("".join(word))
    return words


def _unquote_word(raw: str) -> str:
    """The word with quotes removed and escapes applied (the lexer without RawQuotes)."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "'":
            j = raw.find("'", i + 1)
            out.append(raw[i + 1:j])
            i = j + 1
        elif ch == '"':
            i += 1
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n and raw[i + 1] in '"$\\':
                    i += 1
                out.append(raw[i])
                i += 1
            i += 1
        elif ch == "\\":
            out.append(raw[i + 1:i + 2])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def heredoc_markers(line: str) -> list[HeredocMarker]:
    """The here-documents an instruction line opens, in order (BuildKit's
    heredocsFromLine + ParseHeredoc): words like `<<EOF`, `<<-EOF`, `2<<"EOF"`."""
    words = _shell_words(line)
    if not words:
        return []
    found: list[HeredocMarker] = []
    for word in words:
        m = _HEREDOC_WORD.fullmatch(word)
        if m is None or not m.group(3):
            continue
        rest = m.group(3)
        name = _unquote_word(rest)
        if not name:
            continue
        # Quoted (even partly) delimiter => no expansion of the body.
        expand = rest.count("'") + rest.count('"') == name.count("'") + name.count('"')
        fd = int(m.group(1)) if m.group(1) else 0
        found.append(HeredocMarker(name, expand, m.group(2) == "-", fd))
    return found
