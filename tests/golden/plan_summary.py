"""A readable, id-independent summary of a BuildPlan for golden files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.frontend import PlanOptions
from builder.graph import BaseImageInfo, BuildPlan, ImageConfig, Platform, StepId, step_data


def options_from(case: Path) -> PlanOptions:
    """fixtures/plan/<case>/options.json: build_args ([[k, v|null]]), environ, target,
    platform, build_platform, dockerignore, images ({ref: OCI config object})."""
    path = case / "options.json"
    raw: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    images = {ref: BaseImageInfo(ref=ref, config=ImageConfig.from_oci(cfg))
              for ref, cfg in raw.get("images", {}).items()}
    return PlanOptions(
        build_args=tuple((k, v) for k, v in raw.get("build_args", [])),
        environ=raw.get("environ", {}),
        target=raw.get("target"),
        build_platform=Platform.parse(raw.get("build_platform", "linux/amd64")),
        target_platform=Platform.parse(raw["platform"]) if "platform" in raw else None,
        resolver=lambda ref, _platform: images.get(ref),
        dockerignore=tuple(raw.get("dockerignore", [])),
    )


def summarize(plan: BuildPlan) -> dict[str, Any]:
    """Steps get symbolic names (`s1`, `s2` … in topological order, pruned stages' steps
    after), so goldens check structure and content without depending on hash values."""
    order: list[StepId] = list(plan.topological())
    order += [sid for sid in plan.steps if sid not in order]
    names = {sid: f"s{i}" for i, sid in enumerate(order, 1)}

    def rename(value: Any) -> Any:
        if isinstance(value, str) and value in names:
            return names[value]
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items()}
        return value

    steps = {}
    for sid in order:
        step = plan.steps[sid]
        data = {k: v for k, v in step_data(step).items() if v not in ((), [], "", None, False)}
        span = plan.spans.get(sid)
        steps[names[sid]] = {"kind": step.kind, **rename(data),
                             "line": span.line if span else None}
    stages = []
    for st in plan.stages:
        stages.append({
            "index": st.index, "name": st.name, "base": st.base, "base_stage": st.base_stage,
            "platform": str(st.platform), "pruned": st.index in plan.pruned,
            "target": st.index == plan.target, "deps": list(st.deps),
            "root": names.get(st.root), "steps": [names[s] for s in st.steps],
            "config": st.config.to_oci(), "author": st.author or None,
            "history": [("" if h.empty_layer else "[layer] ") + h.created_by
                        for h in st.history],
        })
    return {"stages": stages, "steps": steps,
            "warnings": [w.message for w in plan.warnings]}
