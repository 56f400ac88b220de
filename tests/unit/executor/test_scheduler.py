"""Scheduler tests with a fake worker that counts realisations (DESIGN.md §7)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from builder import events
from builder.executor import cachekey
from builder.executor.scheduler import Scheduler
from builder.graph import ContextSource, Copy, Exec, ImageSource, Step, StepId, step_id


@dataclass(frozen=True)
class FakeResult:
    key: str


class FakeWorker:
    """Keys like the real worker (StepId + input keys; context content from a dict) and a
    dict for a cache; counts realisations per step."""

    def __init__(self, content: dict[str, str], cache: dict[str, FakeResult],
                 delay: float = 0.0, fail: StepId | None = None) -> None:
        self.content = content
        self.cache = cache
        self.realised: list[StepId] = []
        self.delay = delay
        self.fail = fail
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def is_source(self, step: Step) -> bool:
        return isinstance(step, ImageSource | ContextSource)

    def key(self, sid: StepId, step: Step, inputs: Sequence[FakeResult]) -> str:
        if isinstance(step, ContextSource):
            prints = [cachekey.EntryPrint(p, "f", 0o644, 0, 0, "", self.content[p])
                      for p in step.includes]
            return cachekey.context_key(sid, prints)
        if isinstance(step, ImageSource):
            return cachekey.image_key(sid, "sha256:" + "0" * 64)
        return cachekey.step_key(sid, [i.key for i in inputs])

    def lookup(self, sid: StepId, step: Step, key: str,
               inputs: Sequence[FakeResult]) -> FakeResult | None:
        if self.is_source(step):
            return FakeResult(key)
        return self.cache.get(key)

    def realise(self, sid: StepId, step: Step, key: str, inputs: Sequence[FakeResult],
                vertex: int) -> FakeResult:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            if sid == self.fail:
                raise RuntimeError("boom")
            with self.lock:
                self.realised.append(sid)
            self.cache[key] = FakeResult(key)
            return FakeResult(key)
        finally:
            with self.lock:
                self.active -= 1


def _graph() -> tuple[dict[StepId, Step], dict[str, StepId]]:
    """Two independent stages (a, b) over one base, and a final stage copying from both
    with a RUN after each COPY."""
    steps: dict[StepId, Step] = {}

    def add(step: Step) -> StepId:
        sid = step_id(step)
        steps[sid] = step
        return sid

    base = add(ImageSource(ref="busybox"))
    ctx_a = add(ContextSource(includes=("a.txt",)))
    ctx_b = add(ContextSource(includes=("b.txt",)))
    a1 = add(Copy(root=base, source=ctx_a, sources=("a.txt",), dest="/a/"))
    a2 = add(Exec(root=a1, argv=("sh", "-c", "make a")))
    b1 = add(Copy(root=base, source=ctx_b, sources=("b.txt",), dest="/b/"))
    b2 = add(Exec(root=b1, argv=("sh", "-c", "make b")))
    f1 = add(Copy(root=base, source=a2, sources=("/a",), dest="/a"))
    f2 = add(Copy(root=f1, source=b2, sources=("/b",), dest="/b"))
    f3 = add(Exec(root=f2, argv=("sh", "-c", "selftest")))
    return steps, {"a1": a1, "a2": a2, "b1": b1, "b2": b2, "f1": f1, "f2": f2, "f3": f3}


def test_second_build_realises_nothing() -> None:
    steps, ids = _graph()
    cache: dict[str, FakeResult] = {}
    content = {"a.txt": "1", "b.txt": "2"}
    w1 = FakeWorker(content, cache)
    Scheduler(steps, w1, jobs=2).solve([ids["f3"]])
    assert sorted(w1.realised) == sorted(ids.values())
    w2 = FakeWorker(content, cache)
    s2 = Scheduler(steps, w2, jobs=2)
    s2.solve([ids["f3"]])
    assert w2.realised == []
    assert s2.stats.cached == s2.stats.total == 7


def test_changed_input_reruns_only_descendants() -> None:
    steps, ids = _graph()
    cache: dict[str, FakeResult] = {}
    Scheduler(steps, FakeWorker({"a.txt": "1", "b.txt": "2"}, cache), jobs=2).solve([ids["f3"]])
    w = FakeWorker({"a.txt": "1", "b.txt": "CHANGED"}, cache)
    Scheduler(steps, w, jobs=2).solve([ids["f3"]])
    # b.txt feeds b1 → b2 → f2 → f3; stage a and f1 stay cached.
    assert sorted(w.realised) == sorted([ids["b1"], ids["b2"], ids["f2"], ids["f3"]])


def test_independent_branches_run_in_parallel() -> None:
    steps, ids = _graph()
    w = FakeWorker({"a.txt": "1", "b.txt": "2"}, {}, delay=0.05)
    Scheduler(steps, w, jobs=2).solve([ids["f3"]])
    assert w.max_active == 2
    w1 = FakeWorker({"a.txt": "1", "b.txt": "2"}, {}, delay=0.01)
    Scheduler(steps, w1, jobs=1).solve([ids["f3"]])
    assert w1.max_active == 1


def test_inputs_finish_before_readers_start() -> None:
    steps, ids = _graph()
    w = FakeWorker({"a.txt": "1", "b.txt": "2"}, {}, delay=0.01)
    Scheduler(steps, w, jobs=4).solve([ids["f3"]])
    pos = {sid: i for i, sid in enumerate(w.realised)}
    for sid in w.realised:
        for dep in steps[sid].inputs:
            if dep in pos:
                assert pos[dep] < pos[sid]


def test_identical_steps_are_realised_once() -> None:
    steps: dict[StepId, Step] = {}
    base = ImageSource(ref="busybox")
    run = Exec(root=step_id(base), argv=("true",))
    for s in (base, run, run):  # two stages planning the same RUN: one StepId
        steps[step_id(s)] = s
    w = FakeWorker({}, {})
    Scheduler(steps, w, jobs=2).solve([step_id(run), step_id(run)])
    assert w.realised == [step_id(run)]


def test_failure_stops_the_build_and_records_nothing_after() -> None:
    steps, ids = _graph()
    cache: dict[str, FakeResult] = {}
    w = FakeWorker({"a.txt": "1", "b.txt": "2"}, cache, fail=ids["a2"])
    with pytest.raises(RuntimeError, match="boom"):
        Scheduler(steps, w, jobs=1).solve([ids["f3"]])
    assert ids["f1"] not in w.realised and ids["f3"] not in w.realised


def test_events_number_vertices_and_mark_cached() -> None:
    steps, ids = _graph()
    cache: dict[str, FakeResult] = {}
    names = {sid: f"step {k}" for k, sid in ids.items()}
    seen: list[events.Event] = []
    Scheduler(steps, FakeWorker({"a.txt": "1", "b.txt": "2"}, cache), jobs=1,
              sink=seen.append, names=names).solve([ids["f3"]])
    started = [e for e in seen if isinstance(e, events.StepStarted)]
    assert len(started) == 7 and len({e.vertex for e in started}) == 7
    seen.clear()
    Scheduler(steps, FakeWorker({"a.txt": "1", "b.txt": "2"}, cache), jobs=1,
              sink=seen.append, names=names).solve([ids["f3"]])
    assert [type(e) for e in seen] == [events.StepCached] * 7
