"""The cache-aware executor: solve a BuildPlan's DAG into layers, then commit a stage's image.

Entry points (the pipeline's `executor.solve`):

    solve(store, plan, targets, options, *, jobs, names) -> Solution
    commit_stage(store, plan, stage, results, ...) -> manifest Descriptor

Knows nothing of Dockerfile syntax: it reads steps (builder.graph), runs RUN steps in the
sandbox, writes layers through the store, and reports progress as events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.executor.scheduler import SolveStats
    from builder.executor.worker import SolveOptions, StepResult
    from builder.graph import BuildPlan, StepId
    from builder.store import Store

__all__ = ["ImageResolver", "ResolvedImage", "Solution", "SolveOptions", "StepFailed",
           "StepResult", "commit_stage", "solve"]

_LAZY = {"commit_stage": "builder.executor.assemble", "ImageResolver": "builder.executor.worker",
         "ResolvedImage": "builder.executor.worker", "SolveOptions": "builder.executor.worker",
         "StepFailed": "builder.executor.worker", "StepResult": "builder.executor.worker"}


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): importing builder.executor.cachekey must not pull in the sandbox,
    # the store and the layer writer (and builder.context imports cachekey).
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, slots=True)
class Solution:
    """Every solved step's result and how many were cached / realised."""

    results: Mapping[StepId, StepResult]
    stats: SolveStats


def solve(store: Store, plan: BuildPlan, targets: Sequence[StepId], options: SolveOptions, *,
          jobs: int = 1, names: Mapping[StepId, str] | None = None) -> Solution:
    """Realise (or take from the cache) every step `targets` need, `jobs` at a time.
    Raises StepFailed (exit 1) for a failing step, other PybuildErrors for bad inputs."""
    from builder.executor.scheduler import Scheduler
    from builder.executor.worker import Worker

    worker = Worker(store, options)
    try:
        sched: Scheduler[StepResult] = Scheduler(plan.steps, worker, jobs=jobs,
                                                 sink=options.sink, names=names)
        results = sched.solve(targets)
        return Solution(results, sched.stats)
    finally:
        worker.close()
