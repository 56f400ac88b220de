"""Text → typed AST: every instruction's fields, flags, spans, and the strict checks."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError
from builder.syntax import nodes, parse
from builder.syntax.dump import buildkit_dump


def one(text: str, strict: bool = True) -> nodes.Instruction:
    return parse("FROM base\n" + text, strict=strict).instructions[1]


def test_all_18_instructions_case_insensitively() -> None:
    text = """from base as Build
rUn make
cmd ["a"]
Entrypoint b
shell ["/bin/sh", "-c"]
copy --from=build a b /c/
add --chmod=644 x /y
env A 1 B "2"
label L="v w" M=n
arg V=1 W
expose 80 443/udp
volume ["/v"]
user me:grp
workdir /w
stopsignal SIGTERM
healthcheck --interval=5s cmd ["true"]
onbuild copy . /src
maintainer me <me@x>
"""
    df = parse(text)
    kinds = [type(i).__name__ for i in df.instructions]
    assert kinds == ["From", "Run", "Cmd", "Entrypoint", "Shell", "Copy", "Add", "Env", "Label",
                     "Arg", "Expose", "Volume", "User", "Workdir", "Stopsignal", "Healthcheck",
                     "Onbuild", "Maintainer"]
    assert {i.keyword for i in df.instructions} == set(nodes.INSTRUCTIONS)
    (frm, run, cmd, ent, shell, copy, add, env, label, arg, expose, vol, user, wd, sig, hc, onb,
     mnt) = df.instructions
    assert (frm.image, frm.stage_name, frm.as_written) == ("base", "Build", "as")
    assert frm.written == "from"
    assert frm.stage_name_span is not None and frm.stage_name_span.column == 14
    assert run.command == nodes.Command(exec_form=False, script="make")
    assert cmd.command == nodes.Command(exec_form=True, argv=("a",)) and cmd.json
    assert ent.command.script == "b"
    assert shell.argv == ("/bin/sh", "-c")
    assert (copy.sources, copy.dest, copy.flag("from").value) == (("a", "b"), "/c/", "build")
    assert (add.sources, add.dest, str(add.flags[0])) == (("x",), "/y", "--chmod=644")
    assert [(p.key, p.value, p.legacy) for p in env.pairs] == [("A", "1 B \"2\"", True)]
    assert [(p.key, p.value) for p in label.pairs] == [("L", '"v w"'), ("M", "n")]
    assert [(d.name, d.default) for d in arg.decls] == [("V", "1"), ("W", None)]
    assert expose.ports == ("80", "443/udp")
    assert vol.paths == ("/v",) and vol.json
    assert (user.user, wd.path, sig.signal, mnt.name) == ("me:grp", "/w", "SIGTERM", "me <me@x>")
    assert hc.command == nodes.Command(exec_form=True, argv=("true",))
    assert hc.flag("interval").value == "5s"
    assert isinstance(onb.inner, nodes.Copy) and onb.inner.sources == (".",)


def test_spans_point_at_source() -> None:
    df = parse("FROM base\n  RUN --mount=type=cache,target=/x \\\n      make \\\n      all\n")
    run = df.instructions[1]
    assert (run.span.line, run.span.column, run.span.end_line) == (2, 3, 4)
    flag = run.flags[0]
    assert (flag.span.line, flag.span.column, flag.span.end_column) == (2, 7, 35)
    assert run.original == "RUN --mount=type=cache,target=/x       make       all"
    assert run.command.script == "make       all"


def test_pair_spans_follow_continuations() -> None:
    env = one("ENV A=1 \\\n    B=2\n")
    assert [(p.span.line, p.span.column, p.span.end_column) for p in env.pairs] == [
        (2, 5, 8), (3, 5, 8)]
    legacy = one("LABEL  key   some value\n")
    assert [(p.span.column, p.span.end_column) for p in legacy.pairs] == [(8, 24)]


def test_repeated_flags_keep_order() -> None:
    run = one("RUN --mount=type=cache,target=/a --mount=type=secret,id=b --network=none x\n")
    assert run.flag_values("mount") == ("type=cache,target=/a", "type=secret,id=b")
    assert run.flag("network").value == "none"


def test_double_dash_ends_flags() -> None:
    copy = one("COPY --link -- --weird-file /dst\n")
    assert [f.name for f in copy.flags] == ["link"]
    assert copy.sources == ("--weird-file",)


def test_invalid_json_falls_back_to_shell_form() -> None:
    cmd = one("CMD [\"a\", 'b']\n")
    assert not cmd.json and cmd.command.script == "[\"a\", 'b']"
    copy = one("COPY [a] /b\n")
    assert copy.sources == ("[a]",)


def test_copy_heredoc_sources_by_name() -> None:
    copy = one("COPY <<one.txt <<-\"two\" /dst/\n1\none.txt\n\t2\n\ttwo\n")
    assert copy.sources == ("one.txt", "two")
    assert [h.content for h in copy.heredocs] == ["1\n", "2\n"]
    assert copy.args == ("<<one.txt", '<<-"two"', "/dst/")


def test_healthcheck_none() -> None:
    hc = one("HEALTHCHECK NONE\n")
    assert hc.command is None and hc.args == ("NONE",)


def test_shell_form_keeps_raw_text() -> None:
    run = one("RUN echo \"$HOME\"  'x'   \\$y\n")
    assert run.command.script == "echo \"$HOME\"  'x'   \\$y"


def test_comment_lines_are_reported_with_lines() -> None:
    df = parse("FROM a\n# hadolint ignore=DL3008\nRUN x\n   #indented\n")
    assert [(c.text, c.span.line, c.span.column) for c in df.comments] == [
        (" hadolint ignore=DL3008", 2, 1), ("indented", 4, 4)]


def test_lenient_mode_accepts_what_buildkits_parser_accepts() -> None:
    text = "FROM a b\nFOO bar\nCOPY --user=me x\nHEALTHCHECK\nONBUILD\nRUN\n"
    assert buildkit_dump(parse(text, strict=False)) == (
        '(from "a" "b")\n(foo "")\n(copy ["--user=me"] "x")\n(healthcheck)\n(onbuild)\n(run)\n')


@pytest.mark.parametrize("text, code, column", [
    ("FORM x\n", "PB1101", 1),
    ("COPY onlyone\n", "PB1102", 1),
    ("USER\n", "PB1102", 1),
    ("COPY --form=a b c\n", "PB1103", 6),
    ("RUN --from=a b\n", "PB1103", 5),
    ("ONBUILD --x RUN a\n", "PB1103", 9),
    ("COPY --from a b\n", "PB1104", 6),
    ("COPY --link=maybe a b\n", "PB1104", 6),
    ("FROM a b\n", "PB1105", 6),
    ("FROM a AS b c\n", "PB1105", 6),
    ("FROM a AS 9lives\n", "PB1106", 11),
    ("HEALTHCHECK CONNECT x\n", "PB1107", 13),
    ("HEALTHCHECK NONE x\n", "PB1107", 13),
    ("HEALTHCHECK CMD\n", "PB1102", 13),
    ("ONBUILD FROM x\n", "PB1108", 9),
    ("ONBUILD ONBUILD RUN x\n", "PB1108", 9),
    ("ONBUILD MAINTAINER x\n", "PB1108", 9),
    ("ONBUILD\n", "PB1102", 1),
    ("SHELL /bin/sh -c\n", "PB1109", 7),
    ("ENV =x\n", "PB1110", 5),
    ("ARG =x\n", "PB1110", 5),
    ("CMD [\"a\", [\"b\"]]\n", "PB1004", 5),
    ("LABEL a\n", "PB1005", 7),
    ("LABEL a=b c\n", "PB1006", 11),
    ('VOLUME ["/a", " "]\n', "PB1110", 8),
    ("COPY a <<EOF\nbody\nEOF\n", "PB1111", 8),
])
def test_strict_errors(text: str, code: str, column: int) -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM base\n" + text)
    diag = info.value.diagnostics[0]
    assert (diag.code, diag.span.line, diag.span.column) == (code, 2, column), diag
    assert diag.line_text == text.splitlines()[0]
    assert info.value.exit_code == 3


def test_unknown_instruction_suggests_the_closest() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\nCOPPY a b\n")
    assert info.value.diagnostics[0].hint == "did you mean COPY?"


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n", "\ufeff"])
def test_no_instructions(text: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text, strict=False)
    assert info.value.diagnostics[0].code == "PB1001"


def test_nodes_are_frozen_and_carry_text() -> None:
    df = parse("FROM a\n")
    assert df.text == "FROM a\n" and df.path == "Dockerfile"
    with pytest.raises(AttributeError):
        df.instructions[0].keyword = "RUN"  # type: ignore[misc]


@pytest.mark.parametrize("text", [
    "RUN\n",  # BuildKit runs an empty command; no argument check for RUN/CMD/ENTRYPOINT
    "CMD\n",
    "HEALTHCHECK --anything NONE\n",  # flags of HEALTHCHECK NONE are never parsed
    "ONBUILD COPY --bad-flag a b\n",  # triggers are checked when a child image builds
])
def test_strict_mode_accepts_what_buildkit_builds(text: str) -> None:
    parse("FROM base\n" + text)


def test_absurd_onbuild_nesting_is_our_error_not_a_crash() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\n" + "ONBUILD " * 5000 + "RUN x\n", strict=False)
    assert info.value.diagnostics[0].code == "PB1099"
    nested = parse("FROM a\n" + "ONBUILD " * 50 + "RUN x\n", strict=False)
    assert buildkit_dump(nested).count("(onbuild") == 50


def test_parse_file_errors_are_dockerfile_errors(tmp_path) -> None:
    from builder.syntax import parse_file

    with pytest.raises(DockerfileError, match="cannot read Dockerfile"):
        parse_file(str(tmp_path))  # a directory
    (tmp_path / "Dockerfile").write_bytes(b"FROM a\nRUN \xff\xfe\n")
    assert parse_file(str(tmp_path / "Dockerfile")).instructions[1].args == ("\udcff\udcfe",)
