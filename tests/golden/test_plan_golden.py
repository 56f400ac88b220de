"""Golden plans: fixtures/plan/<case>/Dockerfile (+ options.json) → expected.json.

Regenerate after an intended change with PYBUILD_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.frontend import plan
from builder.syntax import parse
from tests.golden.plan_summary import options_from, summarize

CASES = sorted(p for p in (Path(__file__).resolve().parents[2] / "fixtures" / "plan").iterdir()
               if (p / "Dockerfile").exists())


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_plan_matches_golden(case: Path) -> None:
    dockerfile = parse((case / "Dockerfile").read_text(), "Dockerfile")
    got = summarize(plan(dockerfile, options_from(case)))
    expected = case / "expected.json"
    if os.environ.get("PYBUILD_UPDATE_GOLDEN"):
        expected.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert expected.exists(), f"no golden yet: run with PYBUILD_UPDATE_GOLDEN=1 ({case})"
    assert got == json.loads(expected.read_text())


def test_plans_are_deterministic() -> None:
    for case in CASES:
        df = parse((case / "Dockerfile").read_text(), "Dockerfile")
        a, b = plan(df, options_from(case)), plan(df, options_from(case))
        assert list(a.steps) == list(b.steps)
        assert [s.root for s in a.stages] == [s.root for s in b.stages]
