"""Dockerfile text → typed AST: drives the pre-pass scanner, parses each logical line with
the Lark grammar, applies BuildKit's per-instruction argument rules and builds the frozen
nodes of builder.syntax.nodes. No Lark object leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from builder.errors import Diagnostic, DockerfileError, Severity
from builder.source import Span
from builder.syntax import arguments, codes, nodes
from builder.syntax.prepass import GO_SPACE, LogicalLine, Scanner, heredoc_markers

# BuildKit's dispatch table (parser.go `dispatch`): which line parser splits the arguments.
_LIST = "json-or-list"  # parseMaybeJSONToList: ADD, COPY, VOLUME
_MAYBE_JSON = "json-or-string"  # parseMaybeJSON: CMD, ENTRYPOINT, RUN, SHELL
_WORDS = "words"  # parseNameOrNameVal: ARG
_NAME_VAL = "name-val"  # parseNameVal: ENV, LABEL
_SPLIT = "whitespace"  # parseStringsWhitespaceDelimited: EXPOSE, FROM
_STRING = "string"  # parseString: MAINTAINER, STOPSIGNAL, USER, WORKDIR
_HEALTH = "health"  # parseHealthConfig: HEALTHCHECK
_SUB = "sub-command"  # parseSubCommand: ONBUILD

DISPATCH = {
    "ADD": _LIST, "ARG": _WORDS, "CMD": _MAYBE_JSON, "COPY": _LIST, "ENTRYPOINT": _MAYBE_JSON,
    "ENV": _NAME_VAL, "EXPOSE": _SPLIT, "FROM": _SPLIT, "HEALTHCHECK": _HEALTH,
    "LABEL": _NAME_VAL, "MAINTAINER": _STRING, "ONBUILD": _SUB, "RUN": _MAYBE_JSON,
    "SHELL": _MAYBE_JSON, "STOPSIGNAL": _STRING, "USER": _STRING, "VOLUME": _LIST,
    "WORKDIR": _STRING,
}
# Instructions whose shell form may open here-documents (parser.go heredocDirectives).
HEREDOC_INSTRUCTIONS = frozenset({"ADD", "COPY", "RUN"})


@dataclass(slots=True)
class Raw:
    """One instruction as BuildKit's parser node has it, plus offsets for spans.

    Offsets are into the trimmed logical line the grammar parsed."""

    written: str
    keyword: str
    start: int  # offset of the keyword
    original: str
    flags: list[tuple[str, int, int]] = field(default_factory=list)  # decoded, start, end
    args: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # offset of each arg (-1: unknown)
    json: bool = False
    inner: Raw | None = None
    legacy: list[bool] = field(default_factory=list)  # ENV/LABEL: per pair
    rest: str = ""
    rest_offset: int = 0
    error: tuple[str, str, int] | None = None  # deferred (code, message, offset)


class _Context:
    """Per-file state: the scanner, and how to turn line offsets into spans."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.logical: LogicalLine | None = None
        self.lead = 0

    def span(self, start: int, end: int | None = None) -> Span:
        ll = self.logical
        assert ll is not None
        line, col = ll.locate(self.lead + start)
        if end is None or end <= start:
            return Span(self.scanner.path, line, col, line, col + 1)
        end_line, end_col = ll.locate(self.lead + end - 1)
        return Span(self.scanner.path, line, col, end_line, end_col + 1)

    def error(self, code: str, message: str, start: int, end: int | None = None,
              hint: str | None = None) -> DockerfileError:
        span = self.span(start, end)
        if span.end_line != span.line:
            span = Span(span.file, span.line, span.column, span.line,
                        len(self.scanner.line_text(span.line)) + 1)
        return DockerfileError.at(code, message, span, hint=hint,
                                  line_text=self.scanner.line_text(span.line))


# -- grammar tree → Raw ----------------------------------------------------------------


def _parse_line(text: str, ctx: _Context, base: int) -> Raw:
    """Parse one (trimmed, non-empty) instruction text at offset `base` of the line."""
    from lark.exceptions import LarkError

    from builder.syntax.grammar import parser

    try:
        tree = parser().parse(text)
    except LarkError as exc:  # the grammar accepts every non-empty line; never expected
        raise ctx.error(codes.INTERNAL, f"cannot parse instruction: {exc}", base) from None
    return _walk(tree, text, base, ctx)


def _walk(tree: Any, text: str, base: int, ctx: _Context) -> Raw:
    children = tree.children
    head = children[0]
    written = str(head)
    raw = Raw(written=written, keyword=written.upper(), start=base + head.start_pos,
              original=text)
    pos = head.end_pos  # where the arguments (after the flags) may start
    terminated = False
    sub: Any = None  # ONBUILD's nested instruction subtree
    # The `arguments` subtree is not read: the argument text is re-read from the
    # line after the last flag, because BuildKit ends the flags at a word that *decodes* to
    # `--` (e.g. `--""`), which the lexer cannot know.
    for child in children[1:]:
        if child.data == "flag":
            if terminated:
                continue
            tok = child.children[0]
            decoded = arguments.decode_flag(str(tok))
            pos = tok.end_pos
            if decoded == "--":  # `--` ends the flags; everything after is arguments
                terminated = True
                continue
            raw.flags.append((decoded, base + tok.start_pos, base + tok.end_pos))
        elif child.data in ("plain", "onbuild"):
            sub = child
    rest_raw = text[pos:]
    rest = rest_raw.strip(GO_SPACE)
    rest_offset = base + pos + (len(rest_raw) - len(rest_raw.lstrip(GO_SPACE)))
    raw.rest, raw.rest_offset = rest, rest_offset
    if tree.data == "onbuild":
        if rest:
            if (sub is not None and not terminated
                    and base + sub.children[0].start_pos == rest_offset):
                raw.inner = _walk(sub, text, base, ctx)
                raw.inner.original = rest
            else:
                raw.inner = _parse_line(rest, ctx, rest_offset)
        return raw
    _split_arguments(raw, rest, rest_offset, ctx.scanner.escape)
    return raw


def _split_arguments(raw: Raw, rest: str, off: int, escape: str) -> None:
    """Apply the instruction's BuildKit line parser to its argument text."""
    how = DISPATCH.get(raw.keyword)
    if how is None:  # parseIgnore: unknown instruction keeps one empty argument
        raw.args, raw.offsets = [""], [off]
        return
    if how in (_LIST, _MAYBE_JSON):
        if how == _MAYBE_JSON and rest == "":
            return
        try:
            decoded = arguments.parse_json(rest)
        except arguments.NotStringArray as exc:
            raw.error = (codes.JSON_NOT_STRINGS, str(exc), off)
            return
        if decoded is not None:
            raw.json = True
            raw.args = decoded
            raw.offsets = [off] * len(decoded)
        elif how == _LIST:
            pieces = arguments.split_whitespace(rest)
            raw.args = [p for p, _ in pieces]
            raw.offsets = [off + o for _, o in pieces]
        else:
            raw.args, raw.offsets = [rest], [off]
    elif how == _SPLIT:
        pieces = arguments.split_whitespace(rest)
        raw.args = [p for p, _ in pieces]
        raw.offsets = [off + o for _, o in pieces]
    elif how == _STRING:
        if rest:
            raw.args, raw.offsets = [rest], [off]
    elif how == _WORDS:
        words = arguments.parse_words(rest, escape)
        raw.args = [w for w, _ in words]
        raw.offsets = [off + o for _, o in words]
    elif how == _NAME_VAL:
        try:
            pairs = arguments.parse_name_val(rest, raw.keyword, escape)
        except arguments.NameValueError as exc:
            code = (codes.NAME_VALUE_MISSING_VALUE if exc.missing_value
                    else codes.NAME_VALUE_MISSING_EQUALS)
            raw.error = (code, str(exc), off + exc.offset)
            return
        for name, value, sep, o in pairs:
            raw.args += [name, value, sep]
            value_at = off + o + len(name) + 1 if sep else off + len(rest) - len(value)
            raw.offsets += [off + o, value_at, -1]
            raw.legacy.append(sep == "")
    elif how == _HEALTH:
        split = arguments.split_health(rest)
        if split is None:
            return
        typ, command, coff = split
        raw.args, raw.offsets = [typ], [off]
        if command:
            try:
                decoded = arguments.parse_json(command)
            except arguments.NotStringArray as exc:
                raw.error = (codes.JSON_NOT_STRINGS, str(exc), off + coff)
                return
            if decoded is not None:
                raw.json = True
                raw.args += decoded
                raw.offsets += [off + coff] * len(decoded)
            else:
                raw.args.append(command)
                raw.offsets.append(off + coff)


def _raise_deferred(raw: Raw, ctx: _Context) -> None:
    if raw.error is not None:
        code, message, offset = raw.error
        hint = None
        if code == codes.JSON_NOT_STRINGS:
            hint = 'write the exec form as a flat array of strings, e.g. ["cmd", "arg"]'
        elif code == codes.NAME_VALUE_MISSING_VALUE:
            hint = f"write `{raw.keyword} name=value` (or `{raw.keyword} name value`)"
        elif code == codes.NAME_VALUE_MISSING_EQUALS:
            hint = "every word must be name=value; quote values that contain spaces"
        raise ctx.error(code, message, offset, None, hint)
    if raw.inner is not None:
        _raise_deferred(raw.inner, ctx)


# -- Raw → typed nodes -------------------------------------------------------------------


def _flag_node(decoded: str, start: int, end: int, ctx: _Context) -> nodes.Flag:
    body = decoded[2:]
    name, eq, value = body.partition("=")
    return nodes.Flag(name=name, value=value if eq else None, span=ctx.span(start, end))


def _command(raw: Raw, args: list[str]) -> nodes.Command:
    if raw.json:
        return nodes.Command(exec_form=True, argv=tuple(args))
    return nodes.Command(exec_form=False, script=args[0] if args else "")


def build_node(raw: Raw, ctx: _Context, span: Span, original: str,
               heredocs: tuple[nodes.Heredoc, ...]) -> nodes.Instruction:
    """The typed node of `raw`. Lenient: fields of malformed instructions get empty values
    (the strict checks in builder.syntax.checks reject those before anyone sees them)."""
    common: dict[str, Any] = {
        "keyword": raw.keyword, "written": raw.written, "span": span, "original": original,
        "flags": tuple(_flag_node(d, s, e, ctx) for d, s, e in raw.flags),
        "args": tuple(raw.args), "json": raw.json, "heredocs": heredocs,
    }
    kw, args = raw.keyword, raw.args
    if kw == "FROM":
        stage = as_word = stage_span = None
        if len(args) >= 3 and args[1].lower() == "as":
            as_word, stage = args[1], args[2]
            o = raw.offsets[2]
            stage_span = ctx.span(o, o + len(stage))
        return nodes.From(**common, image=args[0] if args else "", stage_name=stage,
                          stage_name_span=stage_span, as_written=as_word)
    if kw in ("RUN", "CMD", "ENTRYPOINT"):
        cls = {"RUN": nodes.Run, "CMD": nodes.Cmd, "ENTRYPOINT": nodes.Entrypoint}[kw]
        return cls(**common, command=_command(raw, args))
    if kw == "SHELL":
        return nodes.Shell(**common, argv=tuple(args))
    if kw in ("COPY", "ADD"):
        sources = tuple(_heredoc_source(a, heredocs) for a in args[:-1])
        cls2 = nodes.Copy if kw == "COPY" else nodes.Add
        return cls2(**common, sources=sources, dest=args[-1] if args else "")
    if kw in ("ENV", "LABEL"):
        pairs = []
        for i in range(0, len(args) - 2, 3):
            o = raw.offsets[i]
            if args[i + 2] == "":  # legacy `name value`: the value is the rest of the line
                end = raw.rest_offset + len(raw.rest)
            else:
                end = o + len(args[i]) + 1 + len(args[i + 1])
            pairs.append(nodes.KeyValue(key=args[i], value=args[i + 1],
                                        legacy=args[i + 2] == "", span=ctx.span(o, end)))
        cls3 = nodes.Env if kw == "ENV" else nodes.Label
        return cls3(**common, pairs=tuple(pairs))
    if kw == "ARG":
        decls = []
        for word, o in zip(args, raw.offsets, strict=True):
            name, eq, default = word.partition("=")
            decls.append(nodes.ArgDecl(name=name, default=default if eq else None,
                                       span=ctx.span(o, o + len(word))))
        return nodes.Arg(**common, decls=tuple(decls))
    if kw == "EXPOSE":
        return nodes.Expose(**common, ports=tuple(args))
    if kw == "VOLUME":
        return nodes.Volume(**common, paths=tuple(args))
    first = args[0] if args else ""
    if kw == "USER":
        return nodes.User(**common, user=first)
    if kw == "WORKDIR":
        return nodes.Workdir(**common, path=first)
    if kw == "STOPSIGNAL":
        return nodes.Stopsignal(**common, signal=first)
    if kw == "MAINTAINER":
        return nodes.Maintainer(**common, name=first)
    if kw == "HEALTHCHECK":
        command = None
        if args and args[0].upper() == "CMD" and len(args) > 1:
            command = _command(raw, args[1:])
        return nodes.Healthcheck(**common, command=command)
    if kw == "ONBUILD" and raw.inner is not None:
        inner = raw.inner
        inner_span = _inner_span(ctx, inner, span)
        # The trigger text, with the here-document bodies, is what an image's OnBuild list
        # stores and what a child build re-parses.
        suffix = original[len(raw.original):] if heredocs else ""
        node = build_node(inner, ctx, inner_span, inner.original + suffix, heredocs)
        return nodes.Onbuild(**common, inner=node)
    if kw == "ONBUILD":
        # `ONBUILD` with nothing after it: BuildKit's parser keeps it; strict mode rejects.
        empty = nodes.Instruction(keyword="", written="", span=span, original="")
        return nodes.Onbuild(**common, inner=empty)
    return nodes.Instruction(**common)


def _inner_span(ctx: _Context, inner: Raw, outer: Span) -> Span:
    start = ctx.span(inner.start)
    return Span(outer.file, start.line, start.column, outer.end_line, outer.end_column)


def _heredoc_source(arg: str, heredocs: tuple[nodes.Heredoc, ...]) -> str:
    """COPY/ADD name a here-document source by its delimiter (contract in nodes.Copy)."""
    if heredocs and "<<" in arg:
        for marker in heredoc_markers(arg):
            if any(h.name == marker.name for h in heredocs):
                return marker.name
    return arg


# -- the whole file ----------------------------------------------------------------------


def _can_contain_heredoc(raw: Raw) -> bool:
    """BuildKit's Node.canContainHeredoc: RUN/COPY/ADD in shell form, also as the trigger of
    ONBUILD (one level)."""
    if raw.keyword == "ONBUILD" and raw.inner is not None:
        raw = raw.inner
    return raw.keyword in HEREDOC_INSTRUCTIONS and not raw.json


def parse(text: str, path: str = "Dockerfile", *, strict: bool = True) -> nodes.Dockerfile:
    """Parse Dockerfile text into the typed AST (see builder.syntax.parse)."""
    scanner = Scanner(text, path)
    ctx = _Context(scanner)
    instructions: list[nodes.Instruction] = []
    warnings: list[Diagnostic] = []
    from builder.syntax import checks

    while True:
        logical = scanner.next_instruction()
        if logical is None:
            break
        ctx.logical = logical
        joined = logical.joined
        if logical.empty_lines:
            warnings.append(_empty_continuation(scanner, logical))
        line = joined.strip(GO_SPACE)
        ctx.lead = len(joined) - len(joined.lstrip(GO_SPACE))
        if line:
            raw = _parse_line(line, ctx, 0)
        else:  # a continuation that joined to nothing: BuildKit keeps an empty command
            raw = Raw(written="", keyword="", start=0, original="", args=[""], offsets=[0])
        raw.original = joined
        _raise_deferred(raw, ctx)
        heredocs: list[nodes.Heredoc] = []
        original = joined
        if "<<" in joined and _can_contain_heredoc(raw):
            tail: list[str] = []
            for marker in heredoc_markers(joined):
                body = scanner.read_heredoc(marker.name, marker.chomp, logical)
                content = body.content
                if marker.chomp:
                    content = "".join(ln.lstrip("\t") for ln in content.splitlines(True))
                hspan = Span(path, body.start_line, 1, body.end_line,
                             len(scanner.line_text(body.end_line)) + 1)
                heredocs.append(nodes.Heredoc(
                    name=marker.name, content=content, expand=marker.expand,
                    chomp_tabs=marker.chomp, file_descriptor=marker.file_descriptor,
                    span=hspan, raw_content=body.content if content != body.content else None))
                tail.append(body.content + body.terminator)
            if tail:
                original = joined + "\n" + "".join(tail)
        start_line, start_col = logical.start_line, logical.pieces[0][2] + 1
        end_line = logical.end_line
        span = Span(path, start_line, start_col, end_line,
                    len(scanner.line_text(end_line)) + 1)
        node = build_node(raw, ctx, span, original, tuple(heredocs))
        if strict:
            checks.check(node, raw, ctx)
        instructions.append(node)
    if not instructions:
        last = max(len(scanner.lines), 1)
        raise scanner.error(codes.NO_INSTRUCTIONS, "file with no instructions", last, 1,
                            hint="a Dockerfile needs at least a FROM instruction")
    return nodes.Dockerfile(path=path, instructions=tuple(instructions),
                            directives=tuple(scanner.directives),
                            comments=tuple(scanner.comments), escape=scanner.escape, text=text,
                            warnings=tuple(warnings))


def _empty_continuation(scanner: Scanner, logical: LogicalLine) -> Diagnostic:
    """BuildKit's warning for blank lines inside a continued instruction."""
    line = logical.empty_lines[0]
    return Diagnostic(
        codes.EMPTY_CONTINUATION, Severity.WARNING,
        f"empty continuation line in the instruction starting on line {logical.start_line}",
        Span(scanner.path, line, 1, line, 2),
        hint="remove the blank line: empty continuation lines will become errors in a "
             "future BuildKit release",
        url="https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
        line_text=scanner.line_text(line))
