"""What the parent computes before fork and hands to the sandbox's children (Plan), the
constants they share, the status-pipe protocol, and the sandbox's error types.

Status pipe: the children write NUL-terminated messages, one os.write each (atomic, below
PIPE_BUF): P<pid of pid 1> · T<json list of stub paths> · E<setup error> · X<exec error> ·
S<wait status of the command>. The parent reads them until every writer has exited."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from builder.errors import EnvironmentProblem, PybuildError
from builder.sandbox.mode import Filesystem, Mode
from builder.sandbox.ociconfig import CAP_NUMBERS, DEFAULT_CAPS
from builder.sandbox.spec import IdMap

Output = int | Callable[[bytes], None] | None
Input = int | bytes | None

# Signals pid 1 forwards to the command (SIGKILL/SIGSTOP cannot be caught; SIGCHLD is ours).
FORWARD_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                   signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT,
                   signal.SIGALRM, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTIN,
                   signal.SIGTTOU)
INIT_SIGNALS = {*FORWARD_SIGNALS, signal.SIGCHLD}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# Fixed by Documentation/admin-guide/devices.txt.
DEVICE_NUMBERS = {"null": os.makedev(1, 3), "zero": os.makedev(1, 5),
                  "full": os.makedev(1, 7), "random": os.makedev(1, 8),
                  "urandom": os.makedev(1, 9), "tty": os.makedev(5, 0)}
KEEP_CAPS = frozenset(CAP_NUMBERS[c] for c in DEFAULT_CAPS)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(PybuildError):
    """The sandboxed process could not be set up (bad user, mount failure, bad spec)."""


class SandboxUnavailable(EnvironmentProblem):
    """This machine allows no sandbox mode that can run the spec (exit code 4)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the children need, computed in the parent before fork (no work after)."""

    flags: int
    mode: Mode
    lowers: tuple[str, ...]
    upper: str | None
    ovl_work: str | None
    root: str  # mount point of the new root (host path)
    hosts: str
    resolv: str | None
    userxattr: bool
    uid: int
    gid: int
    last_cap: int
    uid_map: tuple[IdMap, ...] = ()
    gid_map: tuple[IdMap, ...] = ()
    apt_conf: str | None = None  # single-id mode: APT::Sandbox::User "root" (see _prepare)
    fs: Filesystem = Filesystem.OVERLAY
    fuse: str | None = None  # the fuse-overlayfs executable
    baseline: str | None = None  # copy mode: where pid 1 saves the tree's baseline

    @property
    def single_id(self) -> bool:
        return len(self.uid_map) == 1


def send(fd: int, kind: bytes, body: str | bytes = b"") -> None:
    """Write one status message; never raises (the reader may be gone)."""
    data = kind + (body.encode(errors="replace") if isinstance(body, str) else body) + b"\0"
    try:
        os.write(fd, data)
    except OSError:
        pass


def describe(exc: BaseException) -> str:
    """A one-line, traceback-free description of `exc` for a status message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return str(exc) or type(exc).__name__


def try_kill(pid: int, sig: int) -> None:
    """os.kill that ignores a process already gone (or no longer ours)."""
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
