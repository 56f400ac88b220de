"""Progress events the core emits instead of printing; the CLI renders them.

A sink is any callable taking one Event. Core code never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from builder.errors import Diagnostic


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events."""


@dataclass(frozen=True, slots=True)
class Warning(Event):  # noqa: A001 - the event's name is the spec's word
    diagnostic: Diagnostic


@dataclass(frozen=True, slots=True)
class Message(Event):
    """A free-form status line (e.g. "exporting to oci layout")."""

    text: str


@dataclass(frozen=True, slots=True)
class StepStarted(Event):
    """A build vertex started. `vertex` numbers vertices in the order they start (BuildKit's
    `#N`); `name` is its display name, e.g. `[build 2/5] RUN make`."""

    vertex: int
    name: str


@dataclass(frozen=True, slots=True)
class StepCached(Event):
    """A vertex was satisfied from the cache (nothing ran)."""

    vertex: int
    name: str


@dataclass(frozen=True, slots=True)
class StepLog(Event):
    """One line of a running step's output (stdout or stderr), without the newline."""

    vertex: int
    line: str
    elapsed: float = 0.0


@dataclass(frozen=True, slots=True)
class StepFinished(Event):
    """A vertex finished (`error` set when it failed); `duration` in seconds."""

    vertex: int
    name: str
    duration: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BuildFinished(Event):
    """The whole build finished: the image's manifest and config digests (sha256:…)."""

    manifest_digest: str
    config_digest: str
    duration: float
    cached: int = 0
    total: int = 0


Sink = Callable[[Event], None]


def discard(_event: Event) -> None:
    """A sink that drops every event."""
