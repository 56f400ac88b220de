"""Property tests: the parser returns an AST or raises DockerfileError — never anything
else, never a hang — and its output is invariant under the rewrites BuildKit ignores."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.errors import DockerfileError
from builder.syntax import nodes, parse
from builder.syntax.dump import buildkit_dump, json_dump
from tests.conftest import CONFORMANCE

SETTINGS = settings(max_examples=200, deadline=timedelta(seconds=2),
                    suppress_health_check=[HealthCheck.too_slow])

# Fragments that exercise every branch of the scanner, grammar and line parsers.
FRAGMENTS = [
    "FROM", "from", "RUN", "COPY", "ADD", "ENV", "LABEL", "ARG", "CMD", "ENTRYPOINT", "SHELL",
    "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME", "USER", "WORKDIR", "STOPSIGNAL",
    "MAINTAINER", "NONE", "AS", " ", "  ", "\t", "\n", "\r\n", "\\", "\\\n", "`", "`\n", "#",
    "# escape=`\n", "# syntax=x\n", "# check=a\n", "--", "--from=a", "--mount=type=cache",
    '"', "'", "[", "]", '["a", "b"]', '[1]', "[[", "=", "a=b", "<<EOF", "<<-EOF", '<<"EOF"',
    "EOF", "\tEOF", "$x", "${y}", "\x00", "\u00a0", "\ufeff", "é", "x", "1",
]


def _attempt(text: str, strict: bool) -> nodes.Dockerfile | None:
    try:
        df = parse(text, "Dockerfile", strict=strict)
    except DockerfileError as err:
        diag = err.diagnostics[0] if err.diagnostics else None
        assert diag is None or diag.code.startswith("PB1")
        return None
    assert isinstance(df, nodes.Dockerfile) and df.instructions
    last = 0
    for ins in df.instructions:
        assert last < ins.span.line <= ins.span.end_line
        last = ins.span.end_line
    return df


def check(text: str) -> None:
    """The contract: a Dockerfile (whose renderings work) or our error, in both modes; and
    what strict mode accepts, lenient mode accepts with the same parse."""
    lenient = _attempt(text, strict=False)
    strict = _attempt(text, strict=True)
    if lenient is not None:
        json.loads(json_dump(lenient))
    if strict is not None:
        assert lenient is not None and buildkit_dump(lenient) == buildkit_dump(strict)


@SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_fragment_soup(text: str) -> None:
    check(text)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    check(text)


# -- invariances ---------------------------------------------------------------------------

WORD = st.text(alphabet="abcxyz019_./:", min_size=1, max_size=6)
SIMPLE = st.tuples(
    st.sampled_from(["RUN", "CMD", "COPY", "EXPOSE", "WORKDIR", "USER", "ENV", "LABEL", "ARG"]),
    st.lists(WORD, min_size=2, max_size=6),
)


def render(instrs: list[tuple[str, list[str]]]) -> list[str]:
    out = ["FROM base"]
    for kw, words in instrs:
        if kw in ("ENV", "LABEL"):
            words = [f"{w}={w}" for w in words]
        out.append(kw + " " + " ".join(words))
    return out


@SETTINGS
@given(st.lists(SIMPLE, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_continuations_comments_crlf_do_not_change_the_parse(instrs, rnd) -> None:
    lines = render(instrs)
    expected = buildkit_dump(parse("\n".join(lines) + "\n"))
    rewritten = []
    for i, line in enumerate(lines):
        pieces = line.split(" ")
        text = pieces[0]
        for piece in pieces[1:]:
            if rnd.random() < 0.4:  # break the line: the space stays, the newline goes
                text += " \\\n" + ("# interleaved comment\n" if rnd.random() < 0.3 else "")
                text += "\n" if rnd.random() < 0.2 else ""  # empty continuation line
                text += piece
            else:
                text += " " + piece
        if i and rnd.random() < 0.3:
            rewritten.append("# a comment between instructions")
        if rnd.random() < 0.3:
            rewritten.append("")
        rewritten.append(text)
    text = "\n".join(rewritten) + "\n"
    assert buildkit_dump(parse(text)) == expected
    assert buildkit_dump(parse(text.replace("\n", "\r\n"))) == expected
    assert buildkit_dump(parse("\ufeff" + text)) == expected
    backtick = "# escape=`\n" + text.replace("\\\n", "`\n")
    assert buildkit_dump(parse(backtick)) == expected


@SETTINGS
@given(st.lists(st.text(alphabet="abc $\"'\\\t{}<", max_size=12), min_size=1, max_size=4),
       st.sampled_from(["EOF", "end", "X_1"]), st.booleans())
def test_heredoc_bodies_are_kept_verbatim(body_lines, name, chomp) -> None:
    body = "".join(line.replace(name, "") + "\n" for line in body_lines)
    marker = f"<<-{name}" if chomp else f"<<{name}"
    df = parse(f"FROM a\nRUN cat {marker} > /f\n{body}{name}\nRUN next\n")
    run = df.instructions[1]
    (doc,) = run.heredocs
    expected = "".join(ln.lstrip("\t") for ln in body.splitlines(True)) if chomp else body
    assert doc.content == expected and doc.name == name
    assert df.instructions[2].args == ("next",)


# -- mutated real-world Dockerfiles ---------------------------------------------------------

def _corpus() -> list[bytes]:
    base = CONFORMANCE / "realworld"
    if not base.is_dir():
        return []
    return [p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and p.suffix not in (".jsonl", ".tsv")]


def _mutations(data: bytes, other: bytes, rnd: random.Random) -> list[bytes]:
    out = []
    n = len(data)
    for _ in range(2):  # truncation
        out.append(data[: rnd.randrange(n + 1)])
    for _ in range(3):  # byte flips
        buf = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            buf[rnd.randrange(n)] = rnd.randrange(256)
        out.append(bytes(buf))
    for _ in range(2):  # splices with another file
        out.append(data[: rnd.randrange(n + 1)] + other[rnd.randrange(len(other) + 1):])
    # special characters at random places
    for ch in (b"\\", b"`", b"<<EOF", b'"', b"[", b"\r", b"\xef\xbb\xbf"):
        i = rnd.randrange(n + 1)
        out.append(data[:i] + ch + data[i:])
    return out


@pytest.mark.conformance
@pytest.mark.timeout(120)
def test_mutated_real_dockerfiles() -> None:
    corpus = _corpus()
    if not corpus:
        pytest.skip(f"conformance corpus not found at {CONFORMANCE}")
    rnd = random.Random(20261127)
    count = 0
    for i, data in enumerate(corpus):
        for mutated in _mutations(data, corpus[(i * 7 + 3) % len(corpus)], rnd):
            check(mutated.decode("utf-8", "surrogateescape"))
            count += 1
    assert count == len(corpus) * 14
