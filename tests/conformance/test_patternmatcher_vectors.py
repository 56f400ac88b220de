"""moby/patternmatcher vectors (matches.tsv, compile.tsv, ignorefile) against our matcher."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from builder.frontend.dockerignore import read_ignore
from builder.patternmatcher import (
    BadPattern,
    MatchInfo,
    MatchType,
    PatternMatcher,
    compile_pattern,
    matches,
)

pytestmark = pytest.mark.conformance


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _incremental(pm: PatternMatcher, path: str) -> bool:
    """Walk from the top directory down, passing each parent's MatchInfo (as a tree walk)."""
    parts = path.rstrip("/").split("/")
    info = MatchInfo()
    result = False
    for i in range(len(parts)):
        result, info = pm.matches_using_parent_results("/".join(parts[: i + 1]), info)
    return result


def test_matches_rows(conformance: Path) -> None:
    rows = [r for r in _rows(conformance / "patternmatcher/matches.tsv")
            if r["case_set"] in ("TestMatches", "TestMatches-multi")]
    assert len(rows) == 72
    failures = []
    for row in rows:
        patterns = json.loads(row["patterns_json"])
        path = row["path"]
        want = row["expected_match"] == "true"
        pm = PatternMatcher(patterns)
        got = {
            "full": pm.matches_or_parent_matches(path),
            "incremental": _incremental(pm, path),
            "no-parent-info": pm.matches_using_parent_results(path, None)[0],
        }
        for mode, value in got.items():
            if value != want:
                failures.append(f"{mode}: {patterns} {path!r} -> {value}, expected {want}")
    assert not failures, "\n".join(failures)


def test_legacy_matches_rows(conformance: Path) -> None:
    rows = [r for r in _rows(conformance / "patternmatcher/matches.tsv")
            if r["case_set"] == "TestMatch-filepath" or r["case_set"].startswith("Matches:")]
    assert len(rows) == 65
    failures = []
    for row in rows:
        patterns = json.loads(row["patterns_json"])
        want_error = bool(row["expected_error"])
        try:
            got: object = matches(row["path"], patterns)
        except BadPattern:
            got = "error"
        want: object = "error" if want_error else row["expected_match"] == "true"
        if got != want:
            failures.append(f"{row['case_set']}: {patterns} {row['path']!r} -> {got}, "
                            f"expected {want}")
    assert not failures, "\n".join(failures)


def test_compile_rows(conformance: Path) -> None:
    rows = _rows(conformance / "patternmatcher/compile.tsv")
    assert len(rows) >= 20
    for row in rows:
        for sep, column in (("/", "regexp_slash"), ("\\", "regexp_backslash")):
            pattern = row["pattern"].replace("/", sep)
            kind, source = compile_pattern(pattern, sep)
            assert kind is MatchType(row["match_type"]), row
            if kind is MatchType.REGEXP:
                assert source == row[column], (pattern, source, row[column])


def test_ignorefile_case(conformance: Path) -> None:
    folder = conformance / "patternmatcher/ignorefile"
    got = read_ignore(folder.joinpath("input.dockerignore").read_text(encoding="utf-8"))
    want = folder.joinpath("expected.txt").read_text(encoding="utf-8").splitlines()
    assert got == want
    assert read_ignore("") == []
