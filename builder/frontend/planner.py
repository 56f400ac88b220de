"""The planner: a parsed Dockerfile + PlanOptions → BuildPlan, one converter per instruction."""

from __future__ import annotations

from builder.frontend.options import PlanOptions
from builder.graph import BuildPlan
from builder.syntax.nodes import Dockerfile


def plan(dockerfile: Dockerfile, options: PlanOptions | None = None) -> BuildPlan:
    """Plan `dockerfile` with BuildKit's semantics. Pure: no I/O, no processes.

    Raises DockerfileError (with FILE:LINE:COL) for unknown/forward/duplicate stages, bad flag
    values, failed expansions, bad JSON forms and unknown flags."""
    raise NotImplementedError("planner under construction")
