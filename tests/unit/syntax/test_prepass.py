"""The line scanner: directives, comments, continuations, heredoc bodies (BuildKit's Parse)."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError
from builder.syntax import parse
from builder.syntax.dump import buildkit_dump
from builder.syntax.prepass import Scanner, heredoc_markers


def dump(text: str) -> str:
    return buildkit_dump(parse(text, strict=False))


def logical_lines(text: str) -> list[tuple[str, int, int]]:
    scanner = Scanner(text, "Dockerfile")
    out = []
    while (ll := scanner.next_instruction()) is not None:
        out.append((ll.joined, ll.start_line, ll.end_line))
    return out


def test_directives_at_the_top_are_read_and_not_comments() -> None:
    df = parse("# syntax=docker/dockerfile:1\n#  ESCAPE = `\n# check=skip=all\nFROM x\n")
    assert [(d.name, d.value, d.span.line) for d in df.directives] == [
        ("syntax", "docker/dockerfile:1", 1), ("escape", "`", 2), ("check", "skip=all", 3)]
    assert df.escape == "`"
    assert df.comments == ()
    assert df.directive("check") == "skip=all"


@pytest.mark.parametrize("text", [
    "FROM x\n# escape=`\nRUN a `\n",  # after an instruction
    "\n# escape=`\nFROM x\nRUN a `\n",  # after a blank line
    "# hello\n# escape=`\nFROM x\nRUN a `\n",  # after an ordinary comment
    "# unknown=1\n# escape=`\nFROM x\nRUN a `\n",  # after an unknown directive
])
def test_directives_elsewhere_are_plain_comments(text: str) -> None:
    df = parse(text)
    assert df.escape == "\\"
    assert df.directive("escape") is None
    assert any(c.text.strip() == "escape=`" for c in df.comments)
    assert df.instructions[-1].args == ("a `",)


def test_duplicate_directive_is_an_error_with_location() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("# syntax=a\n# syntax=b\nFROM x\n")
    diag = info.value.diagnostics[0]
    assert (diag.code, diag.span.line) == ("PB1003", 2)
    assert diag.line_text == "# syntax=b"


def test_bad_escape_directive() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("# escape=x\nFROM x\n")
    assert info.value.diagnostics[0].code == "PB1002"


def test_backtick_escape_continues_lines_and_backslash_is_literal() -> None:
    assert dump("# escape=`\nFROM x\nRUN dir C:\\ `\n  /w\n") == \
        '(from "x")\n(run "dir C:\\\\   /w")\n'


def test_comments_and_blank_lines_inside_continuations_are_skipped() -> None:
    text = "FROM x\nRUN a \\\n  # note \\\n\n   \n  b\n"
    assert logical_lines(text)[1] == ("RUN a   b", 2, 6)
    df = parse(text)
    assert [(c.text, c.span.line, c.span.column) for c in df.comments] == [(" note \\", 3, 3)]


def test_continuation_at_end_of_file() -> None:
    assert logical_lines("FROM x\nRUN a \\") == [("FROM x", 1, 1), ("RUN a ", 2, 2)]


def test_escaped_escape_is_not_a_continuation() -> None:
    assert dump("FROM x\nENV C a\\\\\nENV D b\n") == \
        '(from "x")\n(env "C" "a\\\\\\\\" "")\n(env "D" "b" "")\n'


def test_crlf_and_bom() -> None:
    df = parse("\ufeffFROM x\r\nRUN a \\\r\n  b\r\n")
    assert [i.args for i in df.instructions] == [("x",), ("a   b",)]
    assert df.instructions[1].span.end_line == 3


def test_first_line_indentation_is_dropped_continuation_indentation_kept() -> None:
    assert logical_lines("   FROM x\nRUN a\\\n   b\n")[1][0] == "RUN a   b"


def test_heredoc_markers() -> None:
    found = heredoc_markers('RUN <<EOF 3<<-"EOT" cat <<\'a b\' x<<NO "<<NO" <<E"O"F')
    assert [(m.name, m.expand, m.chomp, m.file_descriptor) for m in found] == [
        ("EOF", True, False, 0), ("EOT", False, True, 3), ("a b", False, False, 0),
        ("EOF", False, False, 0)]
    assert heredoc_markers('RUN <<EOF "unterminated') == []


def test_heredoc_bodies_lines_and_original() -> None:
    text = "FROM x\nRUN <<A cat - <<-B\nline $x\nA\n\t\tindented\n\tB\nRUN next\n"
    run = parse(text).instructions[1]
    assert (run.span.line, run.span.end_line) == (2, 6)
    a, b = run.heredocs
    assert (a.name, a.content, a.expand, a.chomp_tabs) == ("A", "line $x\n", True, False)
    assert (b.name, b.content, b.chomp_tabs) == ("B", "indented\n", True)
    assert b.raw_content == "\t\tindented\n"
    assert (a.span.line, a.span.end_line, b.span.line, b.span.end_line) == (3, 4, 5, 6)
    assert run.original == "RUN <<A cat - <<-B\nline $x\nA\n\t\tindented\n\tB\n"
    assert parse(text).instructions[2].span.line == 7


@pytest.mark.parametrize("text", [
    "FROM x\nCMD <<EOF\nRUN y\n",  # CMD cannot own heredocs
    'FROM x\nRUN ["cat", "<<EOF"]\nRUN y\n',  # exec form cannot either
])
def test_heredoc_words_elsewhere_are_plain_text(text: str) -> None:
    df = parse(text)
    assert len(df.instructions) == 3 and df.instructions[1].heredocs == ()


def test_onbuild_trigger_owns_heredocs() -> None:
    onbuild = parse("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n").instructions[1]
    assert [h.content for h in onbuild.heredocs] == ["echo hi\n"]
    assert onbuild.inner.heredocs == onbuild.heredocs
    assert onbuild.original == "ONBUILD RUN <<EOF\necho hi\nEOF\n"
    assert onbuild.inner.original == "RUN <<EOF\necho hi\nEOF\n"
    reparsed = parse("FROM x\n" + onbuild.inner.original).instructions[1]
    assert reparsed.heredocs == onbuild.heredocs


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM x\nRUN <<EOF\nbody\n")
    diag = info.value.diagnostics[0]
    assert (diag.code, diag.span.line, diag.line_text) == ("PB1007", 2, "RUN <<EOF")


def test_overlong_line_is_rejected_like_bufio_scanner() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM x\nRUN " + "a" * 70000 + "\n")
    assert info.value.diagnostics[0].code == "PB1008"
    parse("FROM x\nRUN " + "a" * 60000 + "\n")


@pytest.mark.parametrize("escape", ["\\", "`"])
def test_continuation_trim_equals_buildkits_regexp(escape: str) -> None:
    """The string-method fast path gives the same result as BuildKit's regexp
    `([^E])E[ \\t]*$|^E[ \\t]*$` → `$1` on every string of up to 5 characters over the
    alphabet that matters."""
    import itertools
    import re

    e = re.escape(escape)
    regexp = re.compile(rf"([^{e}]){e}[ \t]*\Z|\A{e}[ \t]*\Z")
    scanner = Scanner("FROM a\n", "Dockerfile")
    scanner.escape = escape
    for n in range(6):
        for combo in itertools.product(["a", " ", "\t", "\\", "`"], repeat=n):
            text = "".join(combo)
            hit = regexp.search(text)
            want = (regexp.sub(r"\1", text, count=1), False) if hit else (text, True)
            assert scanner._trim_continuation(text) == want, repr(text)


def test_empty_continuation_lines_warn() -> None:
    df = parse("FROM a\nRUN a \\\n\n  b \\\n   \n  c\nRUN d\n")
    (warning,) = df.warnings
    assert (warning.code, warning.severity.value, warning.span.line) == ("PB1201", "warning", 3)
    assert "starting on line 2" in warning.message
    assert parse("FROM a\nRUN a \\\n  # comment\n  b\n").warnings == ()


def test_directive_matching_equals_buildkits_regexp() -> None:
    """match_directive (linear time) decides exactly like BuildKit's regexp, checked with
    Python's (backtracking, same leftmost-first semantics) on every short string."""
    import itertools
    import re

    from builder.syntax.prepass import match_directive

    regexp = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
    for n in range(7):
        for combo in itertools.product(["a", "1", " ", "\t", "\v", "="], repeat=n):
            text = "".join(combo)
            m = regexp.fullmatch(text)
            assert match_directive(text) == (m.groups() if m else None), repr(text)


@pytest.mark.timeout(20)
def test_long_lines_stay_linear() -> None:
    parse("# a=x" + " " * 60000 + "y\nFROM a\n")  # a lazy regexp would take minutes
    ports = " \\\n".join(str(p) for p in range(20000))
    expose = parse("FROM a\nEXPOSE " + ports + "\n").instructions[1]
    assert len(expose.args) == 20000 and expose.span.end_line == 20001
