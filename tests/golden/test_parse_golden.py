"""Golden parses of hand-written Dockerfiles (fixtures/parse/*.Dockerfile) for what
BuildKit's own test files do not cover: here-documents of every kind, the backtick escape
with Windows paths, CRLF + BOM, `# check=`. Expected outputs sit beside each Dockerfile
(`.buildkit`, `.json`); regenerate with PYBUILD_REGEN_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.syntax import parse
from builder.syntax.dump import buildkit_dump, json_dump
from tests.conftest import FIXTURES

CASES = sorted((FIXTURES / "parse").glob("*.Dockerfile"))


@pytest.mark.parametrize("dockerfile", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("kind", ["buildkit", "json"])
def test_golden(dockerfile: Path, kind: str) -> None:
    text = dockerfile.read_bytes().decode("utf-8", "surrogateescape")
    df = parse(text, dockerfile.name)
    got = buildkit_dump(df) if kind == "buildkit" else json_dump(df)
    expected = dockerfile.with_suffix("." + kind)
    if os.environ.get("PYBUILD_REGEN_GOLDEN"):
        expected.write_text(got, encoding="utf-8")
    assert got == expected.read_text(encoding="utf-8")


def test_cases_exist() -> None:
    assert len(CASES) >= 3
