"""Every real-world Dockerfile of the corpus plans without error, deterministically, with one
history entry per instruction and a DAG whose every input is planned."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.frontend import PlanOptions, plan
from builder.syntax import nodes as n
from builder.syntax import parse

pytestmark = pytest.mark.conformance


def _files(conformance: Path) -> list[Path]:
    rows = (conformance / "realworld/sources.tsv").read_text().splitlines()[1:]
    paths = [conformance / r.split("\t")[0] for r in rows]
    return [p for p in paths if p.is_file()]


def test_realworld_dockerfiles_plan(conformance: Path) -> None:
    files = _files(conformance)
    assert len(files) >= 80
    for path in files:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        df = parse(text, str(path))
        p = plan(df, PlanOptions())
        again = plan(df, PlanOptions())
        assert [s.root for s in p.stages] == [s.root for s in again.stages], path
        for sid, step in p.steps.items():
            assert all(i in p.steps for i in step.inputs), (path, sid)
        # One history entry per instruction of the stage (ONBUILD records none), on top of
        # the history inherited from a base stage.
        bodies: list[list[n.Instruction]] = []
        for inst in df.instructions:
            if isinstance(inst, n.From):
                bodies.append([])
            elif bodies:
                bodies[-1].append(inst)
        for st, body in zip(p.stages, bodies, strict=True):
            if st.index in p.pruned:
                continue
            inherited = len(p.stages[st.base_stage].history) if st.base_stage is not None else 0
            own = [i for i in body if not isinstance(i, n.Onbuild)]
            assert len(st.history) - inherited == len(own), (path, st.index)
