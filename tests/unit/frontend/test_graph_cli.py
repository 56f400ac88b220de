"""`pybuild graph` through the real CLI: formats, --target/--build-arg, and every planner error
path reported as FILE:LINE:COL with the line and a caret, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_pybuild

MULTI = """\
ARG BASE=alpine:3.19
FROM ${BASE} AS build
ARG VERSION=1.0
WORKDIR /src
COPY . .
RUN make VERSION=$VERSION

FROM alpine:3.19 AS docs
RUN echo docs > /docs

FROM scratch AS final
COPY --from=build /src/out /app
ENTRYPOINT ["/app"]
"""


def _ctx(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Dockerfile").write_text(text)
    return tmp_path


def test_json_marks_pruned_stages_and_edges(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, MULTI)
    r = run_pybuild("graph", "--format", "json", "--build-arg", "VERSION=2", str(ctx))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["target"] == 2 and doc["pruned"] == [1]
    stages = {s["name"]: s for s in doc["stages"]}
    assert stages["docs"]["pruned"] and not stages["build"]["pruned"]
    assert stages["final"]["deps"] == [0]
    run = next(s for s in doc["steps"].values() if s["kind"] == "exec"
               and "make" in s["argv"][-1])
    assert "VERSION=2" in run["env"]
    # the COPY --from edge joins two independent chains
    copy = doc["steps"][stages["final"]["root"]]
    assert [copy["source"], stages["final"]["root"]] in doc["edges"]


def test_target_prunes_and_dot_and_mermaid_render(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, MULTI)
    r = run_pybuild("graph", "--format", "dot", "--target", "DOCS", str(ctx))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("digraph pybuild {")
    assert 'stage 0: build (FROM alpine:3.19) [pruned]' in r.stdout
    assert "[target]" in r.stdout and "->" in r.stdout
    r = run_pybuild("graph", "--format", "mermaid", str(ctx))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("flowchart TD")
    assert "stroke-dasharray" in r.stdout and "-->" in r.stdout


def test_help_renders() -> None:
    r = run_pybuild("graph", "--help")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    for option in ("--file", "--target", "--build-arg", "--platform", "--format"):
        assert option in r.stdout


def test_unknown_target_is_a_usage_error(tmp_path: Path) -> None:
    r = run_pybuild("graph", "--target", "nope", str(_ctx(tmp_path, MULTI)))
    assert r.returncode == 2
    assert 'target stage "nope" could not be found' in r.stderr
    assert "build, docs, final" in r.stderr
    assert "Traceback" not in r.stderr


def test_stdin_dockerfile_and_dockerignore(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# comment\n*.log\n!keep.log\n")
    r = run_pybuild("graph", "--format", "json", "-f", "-", str(tmp_path),
                    input="FROM scratch\nCOPY . /\n")
    assert r.returncode == 0, r.stderr
    ctx = next(s for s in json.loads(r.stdout)["steps"].values() if s["kind"] == "context")
    assert ctx["excludes"] == ["*.log", "!keep.log"]


def test_bad_dockerignore_pattern_is_reported_at_its_line(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM scratch\n")
    (ctx / ".dockerignore").write_text("a\n!\n")
    r = run_pybuild("graph", str(ctx))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{ctx / '.dockerignore'}:2:1: error DI-PATTERN"), r.stderr


ERRORS = [
    ("unknown-stage-index", "FROM alpine\nCOPY --from=5 /a /b\n", (), 2, 6,
     "invalid stage index 5"),
    ("forward-reference", "FROM alpine AS a\nCOPY --from=b /x /y\nFROM alpine AS b\n",
     ("--target", "a"), 2, 6, 'cannot copy from stage "b"'),
    ("duplicate-stage", "FROM alpine AS a\nFROM alpine AS A\n", (), 2, 16,
     'duplicate stage name "A"'),
    ("failing-expansion", "FROM alpine\nLABEL x=${NOPE:?}\n", (), 2, 1,
     "NOPE: is not allowed to be unset"),
    ("failing-expansion-message", "FROM alpine\nWORKDIR ${DIR:?set DIR}\n", (), 2, 1,
     "DIR: set DIR"),
    ("bad-json-form", "FROM alpine\nSHELL /bin/bash -c\n", (), 2, 7,
     "SHELL requires the arguments to be in JSON form"),
    ("unknown-flag", "FROM alpine\nRUN --netwrk=none true\n", (), 2, 5,
     "unknown flag: --netwrk"),
    ("bad-bool-flag", "FROM alpine\nCOPY --link=maybe a b\n", (), 2, 6,
     "expecting boolean value for flag --link"),
    ("bad-network", "FROM alpine\nRUN --network=bridge true\n", (), 2, 5,
     'unsupported network mode "bridge"'),
    ("bad-mount", "FROM alpine\nRUN --mount=type=bogus,target=/x true\n", (), 2, 5,
     'unsupported mount type "bogus"'),
    ("bad-duration", "FROM alpine\nHEALTHCHECK --interval=5 CMD true\n", (), 2, 13,
     'invalid duration "5"'),
    ("bad-retries", "FROM alpine\nHEALTHCHECK --retries=0 CMD true\n", (), 2, 13,
     "--retries must be at least 1"),
    ("bad-expose", "FROM alpine\nEXPOSE 80/foo\n", (), 2, 1, "invalid proto: foo"),
    ("bad-signal", "FROM alpine\nSTOPSIGNAL SIGFOO\n", (), 2, 1, "Invalid signal: SIGFOO"),
    ("blank-base", "FROM $NOPE\n", (), 1, 1, "base name ($NOPE) should not be blank"),
    ("bad-platform", "FROM --platform=linux alpine\n", (), 1, 6, "failed to parse platform"),
    ("copy-url", "FROM alpine\nCOPY https://example.com/x /x\n", (), 2, 1,
     "source can't be a URL"),
    ("bad-checksum", "FROM alpine\nADD --checksum=md5:1 https://e.com/f /f\n", (), 2, 5,
     "invalid --checksum"),
    ("onbuild-from", "FROM alpine\nONBUILD FROM busybox\n", (), 2, 9,
     "isn't allowed as an ONBUILD trigger"),
    ("unsupported-device", "FROM alpine\nRUN --device=/dev/fuse true\n", (), 2, 5,
     "RUN --device (Dockerfile labs) is not supported"),
    ("instruction-before-from", "RUN true\nFROM alpine\n", (), 1, 1,
     "no build stage in current context"),
]


@pytest.mark.parametrize("text,args,line,col,message",
                         [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_paths_report_file_line_col(tmp_path: Path, text: str, args: tuple[str, ...],
                                          line: int, col: int, message: str) -> None:
    ctx = _ctx(tmp_path, text)
    r = run_pybuild("graph", "--format", "json", *args, "-f", str(ctx / "Dockerfile"),
                    str(ctx))
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{ctx / 'Dockerfile'}:{line}:{col}: error "), r.stderr
    assert message in first, r.stderr
    assert f"{line:>5} | " in r.stderr and "^" in r.stderr  # the line and a caret
