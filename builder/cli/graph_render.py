"""Render a BuildPlan as Graphviz DOT, Mermaid or JSON: stages as clusters, steps as nodes,
inputs as edges, pruned stages dashed and marked."""

from __future__ import annotations

import json
from typing import Any

from builder.graph import (
    BuildPlan,
    ContextSource,
    Copy,
    Exec,
    GitSource,
    HttpSource,
    ImageSource,
    Mkdir,
    Step,
    StepId,
    step_data,
)
from builder.source import SourceText

_MAX_LABEL = 60


def _short(sid: StepId) -> str:
    return sid[:12]


def step_label(plan: BuildPlan, sid: StepId, source: SourceText | None) -> str:
    """A one-line description: the instruction text when the step came from one."""
    step = plan.steps[sid]
    span = plan.spans.get(sid)
    if isinstance(step, ContextSource):
        what = ", ".join(step.includes) if step.includes else "all"
        return f"context ({what})"
    if isinstance(step, ImageSource):
        return "scratch" if step.is_scratch else f"image {step.ref}"
    if span is not None and source is not None and span.file == source.name:
        text = source.line(span.line).strip()
        if text:
            return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"
    return _describe(step)


def _describe(step: Step) -> str:
    if isinstance(step, Exec):
        return "RUN " + " ".join(step.argv)[: _MAX_LABEL]
    if isinstance(step, Copy):
        return ("ADD " if step.add else "COPY ") + " ".join((*step.sources, step.dest))
    if isinstance(step, Mkdir):
        return "WORKDIR " + step.path
    if isinstance(step, HttpSource):
        return "download " + step.url
    if isinstance(step, GitSource):
        return "git " + step.url
    return step.kind


def _stage_members(plan: BuildPlan) -> dict[StepId, int]:
    """Which stage cluster draws each step: its own steps, and its base image."""
    owner: dict[StepId, int] = {}
    for st in plan.stages:
        members = list(st.steps)
        if st.base_stage is None and st.base_root:
            members.insert(0, st.base_root)
        for sid in members:
            owner.setdefault(sid, st.index)
    return owner


def _stage_title(plan: BuildPlan, index: int) -> str:
    st = plan.stages[index]
    title = f"stage {st.index}" + (f": {st.name}" if st.name else "") + f" (FROM {st.base})"
    if index in plan.pruned:
        title += " [pruned]"
    if index == plan.target:
        title += " [target]"
    return title


def _all_steps(plan: BuildPlan) -> list[StepId]:
    order = list(plan.topological())
    seen = set(order)
    for sid in plan.steps:  # steps of pruned stages, in planning order
        if sid not in seen:
            order.append(sid)
            seen.add(sid)
    return order


def _dot_string(text: str) -> str:
    """A DOT double-quoted string (escapes `"` and `\\`; newlines as `\\n`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(plan: BuildPlan, source: SourceText | None = None) -> str:
    owner = _stage_members(plan)
    lines = ["digraph pybuild {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    for st in plan.stages:
        pruned = st.index in plan.pruned
        lines.append(f"  subgraph cluster_{st.index} {{")
        lines.append(f"    label={_dot_string(_stage_title(plan, st.index))};")
        lines.append('    style="dashed"; color="gray";' if pruned else '    style="rounded";')
        for sid, idx in owner.items():
            if idx == st.index:
                attrs = ', fontcolor="gray", color="gray"' if pruned else ""
                label = _dot_string(step_label(plan, sid, source))
                lines.append(f'    "{_short(sid)}" [label={label}{attrs}];')
        lines.append("  }")
    for sid in _all_steps(plan):
        if sid not in owner:
            label = _dot_string(step_label(plan, sid, source))
            lines.append(f'  "{_short(sid)}" [label={label}, shape=folder];')
    for sid in _all_steps(plan):
        for dep in plan.steps[sid].inputs:
            lines.append(f'  "{_short(dep)}" -> "{_short(sid)}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(plan: BuildPlan, source: SourceText | None = None) -> str:
    owner = _stage_members(plan)
    lines = ["flowchart TD"]
    for st in plan.stages:
        lines.append(f'  subgraph stage{st.index}["{_mermaid_text(_stage_title(plan, st.index))}"]')
        for sid, idx in owner.items():
            if idx == st.index:
                label = _mermaid_text(step_label(plan, sid, source))
                lines.append(f'    s{_short(sid)}["{label}"]')
        lines.append("  end")
        if st.index in plan.pruned:
            lines.append(f"  style stage{st.index} stroke-dasharray: 5 5")
    for sid in _all_steps(plan):
        if sid not in owner:
            lines.append(f'  s{_short(sid)}[("{_mermaid_text(step_label(plan, sid, source))}")]')
    for sid in _all_steps(plan):
        for dep in plan.steps[sid].inputs:
            lines.append(f"  s{_short(dep)} --> s{_short(sid)}")
    return "\n".join(lines) + "\n"


def to_json(plan: BuildPlan, source: SourceText | None = None) -> str:
    stages: list[dict[str, Any]] = []
    for st in plan.stages:
        stages.append({
            "index": st.index, "name": st.name, "base": st.base, "base_stage": st.base_stage,
            "platform": str(st.platform) if st.platform else None,
            "pruned": st.index in plan.pruned, "target": st.index == plan.target,
            "deps": list(st.deps), "root": st.root, "steps": list(st.steps),
            "config": st.config.to_oci(),
            "history": [{"created_by": h.created_by, "empty_layer": h.empty_layer}
                        for h in st.history],
        })
    steps: dict[str, Any] = {}
    for sid in _all_steps(plan):
        step = plan.steps[sid]
        span = plan.spans.get(sid)
        steps[sid] = {"kind": step.kind, "label": step_label(plan, sid, source),
                      "inputs": list(step.inputs), **step_data(step),
                      "span": str(span) if span else None}
    edges = [[dep, sid] for sid in _all_steps(plan) for dep in plan.steps[sid].inputs]
    doc = {"target": plan.target, "pruned": list(plan.pruned), "stages": stages,
           "steps": steps, "edges": edges,
           "warnings": [{"code": w.code, "severity": w.severity.value, "message": w.message,
                         "span": str(w.span) if w.span else None} for w in plan.warnings]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
