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


Sink = Callable[[Event], None]


def discard(_event: Event) -> None:
    """A sink that drops every event."""
