"""`pybuild lint` end to end through the real CLI: formats, thresholds, exit codes, stdin,
--fix, --shellcheck."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_pybuild

BAD = "FROM debian\nRUN cd /x && apt-get install -y curl\nMAINTAINER me\n"


@pytest.fixture()
def bad(tmp_path: Path) -> Path:
    p = tmp_path / "Dockerfile"
    p.write_text(BAD)
    (tmp_path / ".hadolint.yaml").write_text("{}\n")
    return p


def test_json_is_hadolints_schema(bad: Path) -> None:
    r = run_pybuild("lint", "-f", "json", str(bad), cwd=bad.parent)
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert data and all(sorted(d) == ["code", "column", "file", "level", "line", "message"]
                        for d in data)
    got = {(d["code"], d["line"], d["level"]) for d in data}
    assert {("DL3006", 1, "warning"), ("DL3003", 2, "warning"), ("DL4000", 3, "error")} <= got


def test_default_file_and_tty(bad: Path) -> None:
    r = run_pybuild("lint", cwd=bad.parent)
    assert r.returncode == 1
    assert "Dockerfile:3:1: error DL4000: MAINTAINER is deprecated" in r.stdout
    assert "    3 | MAINTAINER me" in r.stdout and "^" in r.stdout
    assert "\033[" not in r.stdout  # not a TTY: no colour


def test_stdin(bad: Path) -> None:
    r = run_pybuild("lint", "-f", "json", "-", input=BAD, cwd=bad.parent)
    assert {d["file"] for d in json.loads(r.stdout)} == {"-"}


@pytest.mark.parametrize("threshold, code", [("error", 1), ("none", 0), ("warning", 1)])
def test_failure_threshold(bad: Path, threshold: str, code: int) -> None:
    r = run_pybuild("lint", "--failure-threshold", threshold, str(bad), cwd=bad.parent)
    assert r.returncode == code


def test_threshold_error_passes_on_warnings_only(tmp_path: Path) -> None:
    p = tmp_path / "Dockerfile"
    p.write_text("FROM debian\n")
    (tmp_path / ".hadolint.yaml").write_text("{}\n")
    assert run_pybuild("lint", "-t", "error", str(p), cwd=tmp_path).returncode == 0
    assert run_pybuild("lint", "-t", "warning", str(p), cwd=tmp_path).returncode == 1
    assert run_pybuild("lint", "--no-fail", str(p), cwd=tmp_path).returncode == 0
    assert run_pybuild("lint", "--ignore", "DL3006", "-t", "style", str(p),
                       cwd=tmp_path).returncode == 0


def test_config_file_no_fail_and_override(bad: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("no-fail: true\noverride:\n  info: [DL4000]\n")
    r = run_pybuild("lint", "-f", "json", "--config", str(cfg), str(bad), cwd=bad.parent)
    assert r.returncode == 0
    levels = {d["code"]: d["level"] for d in json.loads(r.stdout)}
    assert levels["DL4000"] == "info"


def test_unparseable_exits_3(tmp_path: Path) -> None:
    p = tmp_path / "Dockerfile"
    p.write_text("# only a comment\n")
    r = run_pybuild("lint", str(p), cwd=tmp_path)
    assert r.returncode == 3
    assert "Traceback" not in r.stderr and r.stderr.strip()


def test_instruction_error_is_reported_and_exits_3(tmp_path: Path) -> None:
    p = tmp_path / "Dockerfile"
    p.write_text("FROM alpine:3.20\nONBUILD FROM debian\nRUN cd /x\n")
    r = run_pybuild("lint", "-f", "json", str(p), cwd=tmp_path)
    assert r.returncode == 3
    codes = {d["code"] for d in json.loads(r.stdout)}
    assert {"DL3043", "DL3003"} <= codes and any(c.startswith("PB11") for c in codes)


def test_sarif(bad: Path) -> None:
    r = run_pybuild("lint", "-f", "sarif", str(bad), cwd=bad.parent)
    doc = json.loads(r.stdout)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rule_ids = [x["id"] for x in run["tool"]["driver"]["rules"]]
    res = run["results"]
    assert {x["ruleId"] for x in res} == set(rule_ids)
    for x in res:
        assert rule_ids[x["ruleIndex"]] == x["ruleId"]
        assert x["level"] in ("error", "warning", "note")
        region = x["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1


def test_checkstyle_and_junit_are_xml(bad: Path) -> None:
    r = run_pybuild("lint", "-f", "checkstyle", str(bad), cwd=bad.parent)
    root = ET.fromstring(r.stdout)
    errors = root.findall("./file/error")
    assert root.tag == "checkstyle" and errors
    assert {e.get("source") for e in errors} >= {"DL3006", "DL4000"}
    r = run_pybuild("lint", "-f", "junit", str(bad), cwd=bad.parent)
    root = ET.fromstring(r.stdout)
    assert root.tag == "testsuites"
    assert int(root.get("failures")) == len(root.findall(".//failure")) > 0


def test_gitlab_and_github(bad: Path) -> None:
    r = run_pybuild("lint", "-f", "gitlab_codeclimate", str(bad), cwd=bad.parent)
    issues = json.loads(r.stdout)
    assert all(i["location"]["path"] == str(bad) and len(i["fingerprint"]) == 64
               for i in issues)
    assert {i["severity"] for i in issues} <= {"info", "minor", "major", "critical", "blocker"}
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    r = run_pybuild("lint", "-f", "github", str(bad), cwd=bad.parent)
    lines = r.stdout.strip().splitlines()
    assert any(ln.startswith("::error file=") and "title=DL4000::" in ln for ln in lines)


def test_unknown_format_is_usage_error(bad: Path) -> None:
    r = run_pybuild("lint", "-f", "xml", str(bad), cwd=bad.parent)
    assert r.returncode == 2


def test_fix_rewrites_in_place_preserving_layout(tmp_path: Path) -> None:
    p = tmp_path / "Dockerfile"
    original = ("# syntax=docker/dockerfile:1\n# build stage\n"
                "from alpine:3.20 as Build\n"
                "MAINTAINER Jane Doe <jane@example.com>\n\n"
                "ENV APP_HOME /srv/app   \n"
                "run apk add --no-cache curl=8.9.1-r0 \\\n"
                "    # keep this comment\n"
                "    && true\n"
                "expose 8080/TCP\n"
                "CMD [\"sh\"]\n")
    p.write_text(original)
    r = run_pybuild("lint", "--fix", "--no-fail", "-f", "json", str(p), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fixed = p.read_text()
    # Majority casing is upper (MAINTAINER, ENV, CMD vs from, run, expose: 3:3 → upper).
    assert fixed == ("# syntax=docker/dockerfile:1\n# build stage\n"
                     "FROM alpine:3.20 AS build\n"
                     'LABEL org.opencontainers.image.authors="Jane Doe <jane@example.com>"\n\n'
                     "ENV APP_HOME=/srv/app   \n"
                     "RUN apk add --no-cache curl=8.9.1-r0 \\\n"
                     "    # keep this comment\n"
                     "    && true\n"
                     "EXPOSE 8080/tcp\n"
                     "CMD [\"sh\"]\n")
    left = {d["code"] for d in json.loads(r.stdout)}
    assert not left & {"DL4000", "MaintainerDeprecated", "LegacyKeyValueFormat",
                       "FromAsCasing", "ConsistentInstructionCasing", "StageNameCasing",
                       "ExposeProtoCasing"}
    # Idempotent: a second --fix changes nothing.
    run_pybuild("lint", "--fix", "--no-fail", str(p), cwd=tmp_path)
    assert p.read_text() == fixed


def test_fix_from_stdin_prints_the_fixed_file(tmp_path: Path) -> None:
    r = run_pybuild("lint", "--fix", "--no-fail", "-f", "json", "-",
                    input="FROM alpine:3.20\nENV a b\n", cwd=tmp_path)
    assert r.stdout.startswith("FROM alpine:3.20\nENV a=b\n")


def test_shellcheck_maps_lines(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    p = tmp_path / "Dockerfile"
    # $Y is not a build variable (ARG X is, and is exported to shellcheck like hadolint does,
    # so `echo $X` is not reported).
    p.write_text("FROM debian:12\nARG X\nRUN echo $X $Y \\\n  && true\n"
                 "RUN <<EOF\nset -e\necho $X\necho $Y\nEOF\n")
    r = run_pybuild("lint", "--shellcheck", "-f", "json", "--no-fail", str(p), cwd=tmp_path)
    sc = sorted((d["code"], d["line"], d["column"]) for d in json.loads(r.stdout)
                if d["code"][:2] == "SC")
    # `$Y` on line 3 column 13; in the heredoc body `echo $Y` is line 8 column 6.
    assert sc == [("SC2086", 3, 13), ("SC2086", 8, 6)], r.stdout


def test_shellcheck_maps_continuation_lines(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    p = tmp_path / "Dockerfile"
    p.write_text("FROM debian:12\nRUN --mount=type=cache,target=/x echo a \\\n  # note\n"
                 "  && echo $Y \\\n  && true\n")
    r = run_pybuild("lint", "--shellcheck", "-f", "json", "--no-fail", str(p), cwd=tmp_path)
    sc = [(d["code"], d["line"], d["column"]) for d in json.loads(r.stdout)
          if d["code"][:2] == "SC"]
    assert sc == [("SC2086", 4, 11)], r.stdout


def test_many_files_in_parallel_match_serial(tmp_path: Path) -> None:
    files = []
    for i in range(10):
        p = tmp_path / f"Dockerfile.{i}"
        p.write_text(BAD if i % 2 else "FROM alpine:3.20\nRUN cd /x\n")
        files.append(str(p))
    a = run_pybuild("lint", "-f", "json", "-j", "2", *files, cwd=tmp_path)
    b = run_pybuild("lint", "-f", "json", "-j", "1", *files, cwd=tmp_path)
    assert a.returncode == b.returncode == 1
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    r = run_pybuild("lint", cwd=tmp_path)  # no ./Dockerfile here
    assert r.returncode == 2
    assert "cannot read Dockerfile" in r.stderr and "Traceback" not in r.stderr


def test_copy_ignored_file_reads_the_dockerignore_beside_the_dockerfile(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*.md\n!KEEP.md\n")
    p = tmp_path / "Dockerfile"
    p.write_text("FROM alpine:3.20\nCOPY README.md KEEP.md src/ /d/\n")
    off = run_pybuild("lint", "-f", "json", "--no-fail", str(p), cwd=tmp_path)
    assert "CopyIgnoredFile" not in off.stdout  # experimental: off by default, as BuildKit
    on = run_pybuild("lint", "-f", "json", "--no-fail", "--enable", "CopyIgnoredFile", str(p),
                     cwd=tmp_path)
    got = [(d["line"], d["message"]) for d in json.loads(on.stdout)
           if d["code"] == "CopyIgnoredFile"]
    assert got == [(2, 'Attempting to Copy file "README.md" that is excluded by .dockerignore')]
    p.write_text("# check=experimental=all\n" + p.read_text())
    again = run_pybuild("lint", "-f", "json", "--no-fail", str(p), cwd=tmp_path)
    assert "CopyIgnoredFile" in again.stdout
