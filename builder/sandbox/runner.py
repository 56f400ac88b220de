"""Starts one SandboxSpec as a process tree in fresh namespaces, streams its output, waits,
and guarantees that no mount or process outlives it."""

from __future__ import annotations

from collections.abc import Callable

from builder.errors import PybuildError
from builder.sandbox.spec import ExecResult, SandboxSpec

Output = int | Callable[[bytes], None] | None
Input = int | bytes | None


class SandboxError(PybuildError):
    """The sandboxed process could not be set up (bad user, mount failure, no namespaces)."""


class Process:
    """A running sandbox. `wait()` returns its ExecResult; `signal()` forwards a signal to the
    command (through pid 1); `kill()` tears the whole sandbox down at once."""

    pid: int

    def signal(self, sig: int) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def wait(self) -> ExecResult:
        raise NotImplementedError


def start(spec: SandboxSpec, *, stdin: Input = None, stdout: Output = None,
          stderr: Output = None) -> Process:
    """Start `spec` in the background; see `run`."""
    raise NotImplementedError


def run(spec: SandboxSpec, *, stdin: Input = None, stdout: Output = None,
        stderr: Output = None) -> ExecResult:
    """Run `spec` to completion and return how it ended. Thread-safe (the executor runs steps
    in threads). Raises SandboxError when the process cannot be set up; a command that exits
    non-zero (or is killed, or times out) is a normal ExecResult, not an exception. On
    KeyboardInterrupt (or any exception while waiting) the sandbox is killed before the
    exception propagates."""
    return start(spec, stdin=stdin, stdout=stdout, stderr=stderr).wait()
