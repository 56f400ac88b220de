"""Progress rendering of build events: tqdm on a TTY, BuildKit-like plain lines in CI, JSON
lines for machines, or nothing (`--progress=auto|tty|plain|quiet|json`)."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO

from builder import events

MODES = ("auto", "tty", "plain", "quiet", "json")


class PlainProgress:
    """One line per event, as `docker buildx build --progress=plain` prints them:
    `#3 [build 2/5] RUN make`, `#3 0.512 output…`, `#3 DONE 1.2s`, `#4 CACHED`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def _out(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, ev: events.Event) -> None:
        if isinstance(ev, events.StepStarted):
            self._out(f"#{ev.vertex} {ev.name}")
        elif isinstance(ev, events.StepCached):
            self._out(f"#{ev.vertex} {ev.name}\n#{ev.vertex} CACHED")
        elif isinstance(ev, events.StepLog):
            self._out(f"#{ev.vertex} {ev.elapsed:.3f} {ev.line}")
        elif isinstance(ev, events.StepFinished):
            if ev.error:
                self._out(f"#{ev.vertex} ERROR: {ev.error}")
            else:
                self._out(f"#{ev.vertex} DONE {ev.duration:.1f}s")
        elif isinstance(ev, events.Warning):
            self._out(ev.diagnostic.render())
        elif isinstance(ev, events.Message):
            self._out(f"=> {ev.text}")
        elif isinstance(ev, events.BuildFinished):
            self._out(f"=> writing image {ev.config_digest} done ({ev.cached}/{ev.total} "
                      f"steps cached, {ev.duration:.1f}s)")

    def close(self) -> None:
        pass


class TtyProgress:
    """tqdm: a live bar naming the running steps; finished steps scroll above it."""

    def __init__(self, stream: TextIO) -> None:
        from tqdm import tqdm

        self.stream = stream
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, float]] = {}
        self._bar = tqdm(total=0, file=stream, leave=False, dynamic_ncols=True,
                         bar_format="{desc} [{elapsed}]")
        self._tqdm = tqdm
        self._t0 = time.monotonic()

    def _refresh(self) -> None:
        if self._running:
            names = ", ".join(n for n, _ in self._running.values())
            self._bar.set_description_str(f"running: {names}"[:200])
        else:
            self._bar.set_description_str("building")
        self._bar.refresh()

    def __call__(self, ev: events.Event) -> None:
        with self._lock:
            write = self._tqdm.write
            if isinstance(ev, events.StepStarted):
                self._running[ev.vertex] = (ev.name, time.monotonic())
            elif isinstance(ev, events.StepCached):
                write(f" => CACHED {ev.name}", file=self.stream)
            elif isinstance(ev, events.StepFinished):
                self._running.pop(ev.vertex, None)
                status = "ERROR" if ev.error else f"{ev.duration:5.1f}s"
                write(f" => {ev.name} {status}", file=self.stream)
            elif isinstance(ev, events.Warning):
                write(ev.diagnostic.render(), file=self.stream)
            elif isinstance(ev, events.Message):
                write(f" => {ev.text}", file=self.stream)
            elif isinstance(ev, events.BuildFinished):
                write(f" => writing image {ev.config_digest} ({ev.cached}/{ev.total} cached, "
                      f"{ev.duration:.1f}s)", file=self.stream)
            self._refresh()

    def close(self) -> None:
        self._bar.close()


class JsonProgress:
    """One JSON object per event (`{"event": "step_started", ...}`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, ev: events.Event) -> None:
        name = "".join("_" + c.lower() if c.isupper() else c for c in type(ev).__name__)[1:]
        data: dict[str, object] = {"event": name}
        if isinstance(ev, events.Warning):
            d = ev.diagnostic
            data.update(code=d.code, severity=d.severity.value, message=d.message,
                        location=str(d.span) if d.span else None)
        else:
            for key in getattr(ev, "__slots__", ()):
                data[key] = getattr(ev, key)
        with self._lock:
            self.stream.write(json.dumps(data, default=str) + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


class QuietProgress:
    def __call__(self, ev: events.Event) -> None:
        pass

    def close(self) -> None:
        pass


def make(mode: str, stream: TextIO | None = None) -> PlainProgress | TtyProgress | JsonProgress \
        | QuietProgress:
    stream = stream or sys.stderr
    if mode == "auto":
        mode = "tty" if stream.isatty() else "plain"
    if mode == "tty":
        return TtyProgress(stream)
    if mode == "plain":
        return PlainProgress(stream)
    if mode == "json":
        return JsonProgress(stream)
    return QuietProgress()
