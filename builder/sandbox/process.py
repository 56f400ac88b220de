"""A started sandbox as the caller sees it (Process): streams its output, feeds its input,
enforces the timeout, forwards signals, and reaps it so that nothing outlives `wait()`."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import selectors
import shutil
import signal
import threading
import time
from collections.abc import Callable

from builder.sandbox.plan import Output, SandboxError, try_kill
from builder.sandbox.spec import ExecResult, SandboxSpec


class Process:
    """A running sandbox. `wait()` returns its ExecResult; `signal()` forwards a signal to the
    command (through pid 1); `kill()` tears the whole sandbox down at once.

    Must be waited for; the thread that called `start()` must outlive the process (the kernel
    kills the sandbox when that thread exits: PR_SET_PDEATHSIG is per thread)."""

    def __init__(self, spec: SandboxSpec, pid: int, status_r: int, outputs: dict[int, Output],
                 stdin_data: tuple[int, bytes] | None, tmpdir: str | None,
                 lifeline: int | None = None, filesystem: str = "overlayfs",
                 after: Callable[[], None] | None = None) -> None:
        self._after = after
        self._lifeline = lifeline
        self._filesystem = filesystem
        self.spec = spec
        self.pid = pid
        self._pidfd = os.pidfd_open(pid)
        self._status_r = status_r
        self._status = bytearray()
        self._outputs = outputs
        self._stdin = stdin_data
        self._tmpdir = tmpdir
        self._init_pid: int | None = None
        self._init_fd: int | None = None  # pidfd of pid 1 when it is not our own child
        self._started = time.monotonic()
        self._result: ExecResult | None = None
        self._lock = threading.Lock()

    # -- control ---------------------------------------------------------------------------
    def signal(self, sig: int) -> None:
        """Send `sig` to the command. It goes to our child — pid 1 as root; rootless the
        process that owns the user namespace, which relays it to pid 1, because pid 1 may run
        as a subordinate id we may not signal — and pid 1 forwards it to the command."""
        if self._result is None:
            try_kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole sandbox (C1, and pid 1 so the kernel kills the namespace)."""
        init = self._init_pid or self._read_init_pid()
        try_kill(self.pid, signal.SIGKILL)
        if init:
            try_kill(init, signal.SIGKILL)

    def _read_init_pid(self) -> int | None:
        self._drain_status(block=False)
        self._watch_init()
        return self._init_pid

    def _watch_init(self) -> None:
        """Learn pid 1's pid from its "P" message and, when it is not our child (rootless),
        hold a pidfd on it at once: the pid cannot be reused while its parent lives."""
        if self._init_pid is not None:
            return
        for msg in bytes(self._status).split(b"\0"):
            if msg.startswith(b"P"):
                self._init_pid = int(msg[1:])
                if self._init_pid != self.pid:
                    try:
                        self._init_fd = os.pidfd_open(self._init_pid)
                    except ProcessLookupError:
                        pass
                return

    # -- waiting ---------------------------------------------------------------------------
    def wait(self) -> ExecResult:
        """Stream output until the process tree exits (or the timeout kills it); return the
        result. Always leaves no process or mount behind, also when interrupted."""
        with self._lock:
            if self._result is not None:
                return self._result
            try:
                timed_out = self._pump()
                result = dataclasses.replace(self._finish(timed_out),
                                             filesystem=self._filesystem)
                if self._after is not None:
                    try:
                        self._after()  # e.g. the copy strategy's tree → overlay upper
                    except OSError as exc:
                        raise SandboxError(f"cannot record the step's changes: {exc}") from None
                self._result = result
            except BaseException:
                self.kill()
                self._reap()
                raise
            finally:
                self._close()
            return self._result

    def _pump(self) -> bool:
        spec = self.spec
        deadline = None if spec.timeout is None else self._started + spec.timeout
        sel = selectors.DefaultSelector()
        buffers: dict[int, bytearray] = {}
        sel.register(self._pidfd, selectors.EVENT_READ, "exit")
        sel.register(self._status_r, selectors.EVENT_READ, "status")
        for fd in self._outputs:
            sel.register(fd, selectors.EVENT_READ, "out")
            buffers[fd] = bytearray()
        if self._stdin is not None:
            sel.register(self._stdin[0], selectors.EVENT_WRITE, "in")
        exited = False
        timed_out = False
        try:
            while True:
                if exited and len(sel.get_map()) == 0:
                    break
                timeout = None
                if deadline is not None and not timed_out:
                    timeout = max(0.0, deadline - time.monotonic())
                events = sel.select(timeout)
                if not events and deadline is not None and not timed_out \
                        and time.monotonic() >= deadline:
                    timed_out = True
                    self.kill()
                    continue
                for key, _ in events:
                    fd = key.fd
                    if key.data == "exit":
                        sel.unregister(fd)
                        exited = True
                    elif key.data == "status":
                        chunk = os.read(fd, 65536)
                        if chunk:
                            self._status += chunk
                            self._watch_init()
                        else:
                            sel.unregister(fd)
                    elif key.data == "in":
                        assert self._stdin is not None
                        wfd, data = self._stdin
                        try:
                            n = os.write(wfd, data[:65536])
                        except BrokenPipeError:
                            n = len(data)
                        data = data[n:]
                        self._stdin = (wfd, data)
                        if not data:
                            sel.unregister(wfd)
                            os.close(wfd)
                            self._stdin = None
                    else:
                        chunk = os.read(fd, 65536)
                        cb = self._outputs[fd]
                        assert callable(cb)
                        if not chunk:
                            sel.unregister(fd)
                            if buffers[fd]:
                                cb(bytes(buffers[fd]))
                            buffers[fd].clear()
                            continue
                        buf = buffers[fd]
                        buf += chunk
                        while (nl := buf.find(b"\n")) >= 0:
                            line = bytes(buf[: nl + 1])
                            del buf[: nl + 1]
                            cb(line)
        finally:
            sel.close()
        return timed_out

    def _finish(self, timed_out: bool) -> ExecResult:
        _, status = os.waitpid(self.pid, 0)
        self._reap()
        duration = time.monotonic() - self._started
        msgs = [m for m in bytes(self._status).split(b"\0") if m]
        stubs: tuple[str, ...] = ()
        exec_error = None
        wait_status = None
        for m in msgs:
            kind, body = m[:1], m[1:].decode(errors="replace")
            if kind == b"E":
                hint = None
                if body.startswith("mount overlay"):
                    hint = ("overlayfs refused this upper/work directory (is it itself on "
                            "overlayfs, e.g. inside a container?): put pybuild's state on "
                            "tmpfs/ext4/xfs, or set PYBUILD_SANDBOX_FS=fuse-overlayfs or copy")
                raise SandboxError(f"cannot set up the sandbox: {body}", hint=hint)
            if kind == b"T":
                stubs = tuple(json.loads(body))
            elif kind == b"X":
                exec_error = body
            elif kind == b"S":
                wait_status = int(body)
        if timed_out:
            return ExecResult(137, signal.SIGKILL, True, None, duration, stubs)
        if wait_status is None:
            # C1 died without a report from pid 1: killed from outside.
            code = os.waitstatus_to_exitcode(status)
            sig = -code if code < 0 else None
            return ExecResult(128 + sig if sig else code, sig, False, None, duration, stubs)
        code = os.waitstatus_to_exitcode(wait_status)
        if exec_error is not None:
            return ExecResult(code, None, False, exec_error, duration, stubs)
        if code < 0:
            return ExecResult(128 - code, -code, False, None, duration, stubs)
        return ExecResult(code, None, False, None, duration, stubs)

    def _reap(self) -> None:
        """Wait until pid 1 (and with it the whole pid namespace) is gone. As root pid 1 is
        our child and already reaped; rootless it is our grandchild, watched by pidfd."""
        self._read_init_pid()
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if self._init_fd is not None:
            select.select([self._init_fd], [], [], 10)

    def _drain_status(self, block: bool) -> None:
        while True:
            r, _, _ = select.select([self._status_r], [], [], None if block else 0)
            if not r:
                return
            try:
                chunk = os.read(self._status_r, 65536)
            except OSError:
                return
            if not chunk:
                return
            self._status += chunk

    def _close(self) -> None:
        for fd in (self._pidfd, self._status_r, *self._outputs, self._lifeline, self._init_fd):
            if fd is None:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        if self._stdin is not None:
            try:
                os.close(self._stdin[0])
            except OSError:
                pass
        self._outputs = {}
        self._pidfd = self._status_r = -1
        self._lifeline = self._init_fd = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
