"""Every real-world Dockerfile of ../shared/conformance/realworld parses (strictly, as a
build would) and agrees with the reference parse (parse.jsonl, BuildKit v0.12.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.syntax import parse
from builder.syntax.dump import instruction_json
from tests.conformance.test_parser_buildkit import normalise
from tests.conftest import CONFORMANCE

REALWORLD = CONFORMANCE / "realworld"
pytestmark = pytest.mark.conformance


def _references() -> list[dict]:
    index = REALWORLD / "parse.jsonl"
    if not index.is_file():
        return []
    return [json.loads(line) for line in index.read_text().splitlines() if line.strip()]


REFS = _references()


def test_every_file_has_a_reference(conformance: Path) -> None:
    files = {str(p.relative_to(REALWORLD)) for p in REALWORLD.rglob("*")
             if p.is_file() and p.suffix not in (".jsonl", ".tsv")}
    assert files == {r["file"] for r in REFS}
    assert len(REFS) == 80


@pytest.mark.parametrize("ref", REFS, ids=lambda r: r["file"])
def test_agrees_with_reference(conformance: Path, ref: dict) -> None:
    assert ref["ok"], "every visible real-world file is accepted by BuildKit"
    text = (REALWORLD / ref["file"]).read_bytes().decode("utf-8", "surrogateescape")
    dockerfile = parse(text, ref["file"])  # strict: these files build with BuildKit
    mine = [normalise(instruction_json(i)) for i in dockerfile.instructions]
    assert len(mine) == len(ref["instructions"])
    for got, want in zip(mine, ref["instructions"], strict=True):
        assert got == want, f"{ref['file']}:{want['start_line']}"


def test_corpus_covers_heredocs_and_mounts(conformance: Path) -> None:
    """Guard against a silently shrinking corpus: the features the README promises."""
    heredocs = mounts = 0
    for ref in REFS:
        text = (REALWORLD / ref["file"]).read_bytes().decode("utf-8", "surrogateescape")
        for ins in parse(text, ref["file"]).instructions:
            heredocs += len(ins.heredocs) > 0
            mounts += any(f.name == "mount" for f in ins.flags)
    assert heredocs == 29
    assert mounts > 0
