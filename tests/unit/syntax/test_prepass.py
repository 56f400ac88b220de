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
