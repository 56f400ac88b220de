"""Progress renderers of `pybuild build` (plain BuildKit-like lines, JSON lines, tqdm)."""

from __future__ import annotations

import io
import json

from builder import events
from builder.cli.progress import JsonProgress, PlainProgress, TtyProgress, make
from builder.errors import Diagnostic, Severity


def _feed(sink) -> None:
    sink(events.StepStarted(3, "[build 2/5] RUN make"))
    sink(events.StepLog(3, "compiling", 0.5))
    sink(events.StepFinished(3, "[build 2/5] RUN make", 1.25))
    sink(events.StepCached(4, "[build 3/5] COPY . ."))
    sink(events.StepFinished(5, "[build 4/5] RUN false", 0.1, "exit code: 1"))
    sink(events.Warning(Diagnostic("DF-UNUSED-ARG", Severity.WARNING, "build-arg X unused")))
    sink(events.BuildFinished("sha256:m", "sha256:c", 2.0, 1, 4))


def test_plain_lines_are_buildkit_like() -> None:
    out = io.StringIO()
    _feed(PlainProgress(out))
    lines = out.getvalue().splitlines()
    assert lines[:6] == ["#3 [build 2/5] RUN make", "#3 0.500 compiling", "#3 DONE 1.2s",
                         "#4 [build 3/5] COPY . .", "#4 CACHED", "#5 ERROR: exit code: 1"]
    assert "warning DF-UNUSED-ARG: build-arg X unused" in lines[6]
    assert lines[-1].startswith("=> writing image sha256:c done (1/4 steps cached")


def test_json_lines() -> None:
    out = io.StringIO()
    _feed(JsonProgress(out))
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert objs[0] == {"event": "step_started", "vertex": 3, "name": "[build 2/5] RUN make"}
    assert objs[3]["event"] == "step_cached"
    assert objs[5]["code"] == "DF-UNUSED-ARG"
    assert objs[-1]["config_digest"] == "sha256:c"


def test_tty_writes_finished_steps() -> None:
    out = io.StringIO()
    sink = TtyProgress(out)
    _feed(sink)
    sink.close()
    text = out.getvalue()
    assert "CACHED [build 3/5] COPY . ." in text and "[build 2/5] RUN make" in text


def test_auto_is_plain_without_a_terminal() -> None:
    assert isinstance(make("auto", io.StringIO()), PlainProgress)
