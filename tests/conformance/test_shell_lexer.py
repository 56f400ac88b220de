"""BuildKit's shell-lexer vectors (envVarTest, wordsTest) against builder.frontend.expand."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.frontend.expand import ExpansionError, expand, expand_words

pytestmark = pytest.mark.conformance

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_rows(path: Path) -> list[tuple[int, str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        platform, source, expected = (f.strip() for f in line.split("|", 2))
        if platform in ("A", "U"):  # all platforms, or unix only: we are Linux
            rows.append((number, source, expected))
    return rows


def test_env_var_vectors(conformance: Path) -> None:
    rows = _env_var_rows(conformance / "buildkit/shell/envVarTest")
    assert len(rows) >= 200
    failures = []
    for number, source, expected in rows:
        try:
            got = expand(source, ENV)
        except ExpansionError as err:
            got = "error"
            assert err.message.startswith("failed to process ")
        if got != expected:
            failures.append(f"line {number}: {source!r} -> {got!r}, expected {expected!r}")
    assert not failures, "\n".join(failures)


def test_words_vectors(conformance: Path) -> None:
    env: dict[str, str] = {}
    failures = []
    count = 0
    text = (conformance / "buildkit/shell/wordsTest").read_text(encoding="utf-8")
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("ENV "):
            name, _, value = line[4:].lstrip().partition("=")
            env[name] = value
            continue
        source, _, rest = line.partition("|")
        expected = rest.lstrip().split(",")
        count += 1
        try:
            got = expand_words(source.strip(), env)
        except ExpansionError:
            got = ["error"]
        if got != expected:
            failures.append(f"line {number}: {source.strip()!r} -> {got!r}, expected {expected!r}")
    assert count >= 20
    assert not failures, "\n".join(failures)
