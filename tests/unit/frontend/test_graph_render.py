"""DOT, Mermaid and JSON renderings are well formed for every golden plan: every edge joins
declared nodes, every step appears once, pruned stages are marked."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.cli.graph_render import to_dot, to_json, to_mermaid
from builder.frontend import plan
from builder.source import SourceText
from builder.syntax import parse
from tests.golden.plan_summary import options_from

CASES = sorted(p for p in (Path(__file__).resolve().parents[3] / "fixtures" / "plan").iterdir()
               if (p / "Dockerfile").exists())


def _load(case: Path):
    text = (case / "Dockerfile").read_text()
    return plan(parse(text, "Dockerfile"), options_from(case)), SourceText("Dockerfile", text)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_dot_is_well_formed(case: Path) -> None:
    p, src = _load(case)
    out = to_dot(p, src)
    assert out.count("{") == out.count("}")
    nodes = re.findall(r'^\s*"([0-9a-f]{12})" \[label=', out, re.M)
    assert len(nodes) == len(set(nodes)) == len(p.steps)
    for a, b in re.findall(r'"([0-9a-f]{12})" -> "([0-9a-f]{12})"', out):
        assert a in nodes and b in nodes
    assert out.count("[pruned]") == len(p.pruned)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_mermaid_is_well_formed(case: Path) -> None:
    p, src = _load(case)
    out = to_mermaid(p, src)
    nodes = re.findall(r"^\s*s([0-9a-f]{12})[\[(]", out, re.M)
    assert len(nodes) == len(set(nodes)) == len(p.steps)
    for a, b in re.findall(r"s([0-9a-f]{12}) --> s([0-9a-f]{12})", out):
        assert a in nodes and b in nodes
    assert out.count("subgraph") == out.count("\n  end") == len(p.stages)
    assert '"' not in "".join(re.findall(r'\["(.*)"\]', out))  # quotes are escaped


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_json_round_trips(case: Path) -> None:
    p, src = _load(case)
    doc = json.loads(to_json(p, src))
    assert set(doc["steps"]) == set(p.steps)
    assert [s["pruned"] for s in doc["stages"]] == [i in p.pruned for i in range(len(p.stages))]
    assert len(doc["edges"]) == sum(len(s.inputs) for s in p.steps.values())


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_graphviz_accepts_the_dot(case: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("graphviz `dot` is not installed (Debian package graphviz)")
    p, src = _load(case)
    r = subprocess.run([dot, "-Tsvg"], input=to_dot(p, src), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert "<svg" in r.stdout
