"""The scheduler: walks a BuildPlan's DAG, running every step whose inputs are ready on a
thread pool (independent branches in parallel, `jobs` at a time), asking a Worker for each
step's cache key, taking hits from the cache and realising misses.

Contracts:
- Each StepId is handled once per solve, however many stages reach it: identical steps have
  identical StepIds (content-derived), so deduplication is by construction.
- A step starts only after all its inputs finished; results are handed to it in the step's
  fixed input order.
- The first failure stops the build: no new step starts, running ones are cancelled through the
  worker's optional `cancel()` (RUN sandboxes are killed) and the failure is re-raised.
  Nothing is half-recorded (the worker records a result only on success).
- Events: StepCached for a hit, StepStarted/StepFinished around a miss (and around source
  steps, whose "realisation" is resolving/fingerprinting). Vertices are numbered in start order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from builder import events
from builder.graph import Step, StepId, inputs_first

R = TypeVar("R")


class Worker(Protocol[R]):
    """What the scheduler needs from whoever knows how to realise steps."""

    def is_source(self, step: Step) -> bool:
        """True for steps that only resolve inputs (base images, context): never cached."""

    def key(self, sid: StepId, step: Step, inputs: Sequence[R]) -> str:
        """The step's cache key (may read the context or resolve an image)."""

    def lookup(self, sid: StepId, step: Step, key: str, inputs: Sequence[R]) -> R | None:
        """The cached result for `key`, or None on a miss. Must be cheap: no rootfs, no
        sandbox, no layer I/O."""

    def realise(self, sid: StepId, step: Step, key: str, inputs: Sequence[R],
                vertex: int) -> R:
        """Do the step's work and record the result under `key`; raise on failure."""


@dataclass(slots=True)
class SolveStats:
    """How a solve went: steps handled, cache hits, misses realised."""

    total: int = 0
    cached: int = 0
    realised: int = 0


class Scheduler(Generic[R]):
    """One solve over `steps` (StepId → Step) for `targets`, with `jobs` worker threads."""

    def __init__(self, steps: Mapping[StepId, Step], worker: Worker[R], *, jobs: int = 1,
                 sink: events.Sink = events.discard,
                 names: Mapping[StepId, str] | None = None,
                 hidden: Callable[[StepId], bool] | None = None) -> None:
        self.steps = steps
        self.worker = worker
        self.jobs = max(1, jobs)
        self.sink = sink
        self.names = names or {}
        self.hidden = hidden or (lambda sid: sid not in self.names)
        self.stats = SolveStats()
        self._lock = threading.Lock()
        self._vertex = 0

    def _next_vertex(self) -> int:
        with self._lock:
            self._vertex += 1
            return self._vertex

    def needed(self, targets: Sequence[StepId]) -> list[StepId]:
        """Every step the targets reach, inputs before the steps that read them."""
        return inputs_first(self.steps, targets)

    def _one(self, sid: StepId, inputs: Sequence[R]) -> R:
        step = self.steps[sid]
        name = self.names.get(sid, f"[internal] {step.kind} {sid[:12]}")
        show = not self.hidden(sid)
        if self.worker.is_source(step):
            vertex = self._next_vertex() if show else 0
            t0 = time.monotonic()
            if show:
                self.sink(events.StepStarted(vertex, name))
            try:
                key = self.worker.key(sid, step, inputs)
                result = self.worker.lookup(sid, step, key, inputs)
                if result is None:
                    result = self.worker.realise(sid, step, key, inputs, vertex)
            except BaseException as err:
                if show:
                    self.sink(events.StepFinished(vertex, name, time.monotonic() - t0,
                                                  str(err) or type(err).__name__))
                raise
            if show:
                self.sink(events.StepFinished(vertex, name, time.monotonic() - t0))
            return result
        key = self.worker.key(sid, step, inputs)
        hit = self.worker.lookup(sid, step, key, inputs)
        with self._lock:
            self.stats.total += 1
            if hit is not None:
                self.stats.cached += 1
        if hit is not None:
            if show:
                self.sink(events.StepCached(self._next_vertex(), name))
            return hit
        vertex = self._next_vertex()
        t0 = time.monotonic()
        if show:
            self.sink(events.StepStarted(vertex, name))
        try:
            result = self.worker.realise(sid, step, key, inputs, vertex)
        except BaseException as err:
            if show:
                self.sink(events.StepFinished(vertex, name, time.monotonic() - t0,
                                              str(err) or type(err).__name__))
            raise
        with self._lock:
            self.stats.realised += 1
        if show:
            self.sink(events.StepFinished(vertex, name, time.monotonic() - t0))
        return result

    def solve(self, targets: Sequence[StepId]) -> dict[StepId, R]:
        """Realise (or take from the cache) every step the targets need; returns each step's
        result. Raises the first step failure, after asking the worker (its optional
        `cancel()`) to stop the steps still running; Ctrl-C does the same."""
        order = self.needed(targets)
        waiting = {sid: set(self.steps[sid].inputs) for sid in order}
        readers: dict[StepId, list[StepId]] = {sid: [] for sid in order}
        for sid in order:
            for dep in waiting[sid]:
                readers[dep].append(sid)
        results: dict[StepId, R] = {}
        ready = [sid for sid in order if not waiting[sid]]
        running: dict[Future[R], StepId] = {}
        cancel = getattr(self.worker, "cancel", None)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="pybuild-step") as pool:
            try:
                self._loop(pool, ready, running, results, waiting, readers)
            except BaseException:
                # A failure (or Ctrl-C): stop the steps still running instead of waiting.
                if cancel is not None:
                    cancel()
                raise
        return results

    def _loop(self, pool: ThreadPoolExecutor, ready: list[StepId],
              running: dict[Future[R], StepId], results: dict[StepId, R],
              waiting: dict[StepId, set[StepId]], readers: dict[StepId, list[StepId]]) -> None:
        failure: BaseException | None = None
        while ready or running:
            while ready and failure is None:
                sid = ready.pop(0)
                ins = [results[d] for d in self.steps[sid].inputs]
                running[pool.submit(self._one, sid, ins)] = sid
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                sid = running.pop(fut)
                err = fut.exception()
                if err is not None:
                    if failure is None:
                        failure = err
                    continue
                results[sid] = fut.result()
                for r in readers[sid]:
                    waiting[r].discard(sid)
                    if not waiting[r]:
                        ready.append(r)
            if failure is not None:
                ready.clear()
                cancel = getattr(self.worker, "cancel", None)
                if cancel is not None:
                    cancel()
        if failure is not None:
            raise failure
