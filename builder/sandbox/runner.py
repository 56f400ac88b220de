"""Starts one SandboxSpec as a process tree in fresh namespaces, streams its output, waits,
and guarantees that no mount or process outlives it.

Process tree (no new Python interpreter, no helper binary: plain os.fork of the caller):

    caller ─ fork ─▶ C1  setsid, unshare(NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET][|NEWUSER]), lo up
                      └ fork ─▶ C2  pid 1 of the new pid namespace: mounts, pivot_root, then
                                     └ fork ─▶ C3  drop to the user, exec the command
                                   C2 stays as init: reaps zombies, forwards signals to C3,
                                   exits with C3's status (the kernel then kills the rest)

Cleanup guarantees: every mount lives only in C1's private mount namespace, which the kernel
tears down when its last process dies. C1 dies with the forking thread (PR_SET_PDEATHSIG), C2
with C1 (PDEATHSIG plus a lifeline pipe against the fork race), and everything in the pid
namespace with C2. `Process.kill()` (used on timeout, Ctrl-C, or any error while waiting)
SIGKILLs C1 and C2 and waits for both, so a returned run() leaves nothing behind.

Code after fork runs in a copy of a possibly multi-threaded process: it only calls preloaded
modules (os, ctypes wrappers, signal) and never takes a lock another thread could hold.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pwd
import select
import selectors
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.errors import EnvironmentProblem, PybuildError

if TYPE_CHECKING:
    from builder.oci.layers import Change
from builder.sandbox import linux, seccomp, tree, users
from builder.sandbox.mode import Filesystem, Mode, ModeReport, detect, subid_range
from builder.sandbox.ociconfig import CAP_NUMBERS, DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS
from builder.sandbox.spec import ExecResult, IdMap, Mount, SandboxSpec

Output = int | Callable[[bytes], None] | None
Input = int | bytes | None

# Signals pid 1 forwards to the command (SIGKILL/SIGSTOP cannot be caught; SIGCHLD is ours).
_FORWARD = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
            signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM, signal.SIGPIPE,
            signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
_INIT_SIGNALS = {*_FORWARD, signal.SIGCHLD}
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# Fixed by Documentation/admin-guide/devices.txt.
_DEVICE_NUMBERS = {"null": os.makedev(1, 3), "zero": os.makedev(1, 5), "full": os.makedev(1, 7),
                   "random": os.makedev(1, 8), "urandom": os.makedev(1, 9),
                   "tty": os.makedev(5, 0)}
_KEEP_CAPS = frozenset(CAP_NUMBERS[c] for c in DEFAULT_CAPS)
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(PybuildError):
    """The sandboxed process could not be set up (bad user, mount failure, bad spec)."""


class SandboxUnavailable(EnvironmentProblem):
    """This machine allows no sandbox mode that can run the spec (exit code 4)."""


@dataclass(frozen=True, slots=True)
class _Plan:
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


def _unavailable(report: ModeReport) -> SandboxUnavailable:
    return SandboxUnavailable(f"cannot run a sandboxed process here: {report.reason}",
                              hint=report.fix or "run `pybuild info` for details")


class Process:
    """A running sandbox. `wait()` returns its ExecResult; `signal()` forwards a signal to the
    command (through pid 1); `kill()` tears the whole sandbox down at once.

    Must be waited for; the thread that called `start()` must outlive the process (the kernel
    kills the sandbox when that thread exits: PR_SET_PDEATHSIG is per thread)."""

    def __init__(self, spec: SandboxSpec, pid: int, status_r: int, outputs: dict[int, Output],
                 stdin_data: tuple[int, bytes] | None, tmpdir: str | None,
                 lifeline: int | None = None, filesystem: str = "overlayfs") -> None:
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
        self._started = time.monotonic()
        self._result: ExecResult | None = None
        self._lock = threading.Lock()

    # -- control ---------------------------------------------------------------------------
    def signal(self, sig: int) -> None:
        """Send `sig` to pid 1, which forwards it to the command."""
        if self._result is None:
            init = self._init_pid or self._read_init_pid()
            if init:
                _try_kill(init, sig)

    def kill(self) -> None:
        """SIGKILL the whole sandbox (C1, and pid 1 so the kernel kills the namespace)."""
        init = self._init_pid or self._read_init_pid()
        _try_kill(self.pid, signal.SIGKILL)
        if init:
            _try_kill(init, signal.SIGKILL)

    def _read_init_pid(self) -> int | None:
        self._drain_status(block=False)
        for msg in bytes(self._status).split(b"\0"):
            if msg.startswith(b"P"):
                self._init_pid = int(msg[1:])
        return self._init_pid

    # -- waiting ---------------------------------------------------------------------------
    def wait(self) -> ExecResult:
        """Stream output until the process tree exits (or the timeout kills it); return the
        result. Always leaves no process or mount behind, also when interrupted."""
        with self._lock:
            if self._result is not None:
                return self._result
            try:
                timed_out = self._pump()
                self._result = dataclasses.replace(self._finish(timed_out),
                                                   filesystem=self._filesystem)
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
                raise SandboxError(body)
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
        """Wait until pid 1 (and with it the whole pid namespace) is gone."""
        init = self._init_pid or self._read_init_pid()
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if init:
            try:
                fd = os.pidfd_open(init)
            except ProcessLookupError:
                return
            try:
                select.select([fd], [], [], 10)
            finally:
                os.close(fd)

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
        for fd in (self._pidfd, self._status_r, *self._outputs, self._lifeline):
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
        self._lifeline = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def _try_kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- parent-side preparation ----------------------------------------------------------------

def _hosts_text(spec: SandboxSpec) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"127.0.1.1\t{spec.hostname}", *spec.extra_hosts]
    return "\n".join(lines) + "\n"


def _host_resolv() -> str:
    """The host's resolver config; systemd-resolved's stub (127.0.0.53) is unreachable from a
    container's point of view in general, so prefer the upstream list like Docker does."""
    for path in ("/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path == "/etc/resolv.conf" or "nameserver" in text:
            return text
    return ""


def _validate(spec: SandboxSpec) -> None:
    if not spec.argv:
        raise SandboxError("empty command")
    if not spec.lowers:
        raise SandboxError("no rootfs: SandboxSpec.lowers is empty")
    for d in spec.lowers:
        if not os.path.isdir(d):
            raise SandboxError(f"rootfs layer directory {d} does not exist")
    if spec.upper is not None and spec.work is None:
        raise SandboxError("SandboxSpec.upper needs a work directory on the same filesystem")
    if not spec.cwd.startswith("/"):
        raise SandboxError(f"working directory {spec.cwd!r} is not absolute")
    for m in spec.mounts:
        if not m.target.startswith("/"):
            raise SandboxError(f"mount target {m.target!r} is not absolute")
        if m.type == "bind" and (m.source is None or not os.path.exists(m.source)):
            raise SandboxError(f"bind mount source {m.source!r} does not exist")
        if m.type not in ("bind", "tmpfs"):
            raise SandboxError(f"unsupported mount type {m.type!r}")


def _prepare(spec: SandboxSpec, report: ModeReport) -> tuple[_Plan, str | None]:
    """Create the work-dir layout and compute the namespace flags (parent side)."""
    tmpdir = None
    work = spec.work
    if work is None:
        work = tmpdir = tempfile.mkdtemp(prefix="pybuild-sandbox-")
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    ovl_work = None
    if spec.upper is not None:
        ovl_work = os.path.join(work, "ovl")
        os.makedirs(ovl_work, exist_ok=True)
    hosts = os.path.join(work, "hosts")
    with open(hosts, "w") as f:
        f.write(_hosts_text(spec))
    resolv = None
    if spec.network == "host":
        resolv = os.path.join(work, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(_host_resolv())
    flags = (linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC)
    if spec.network == "none":
        flags |= linux.CLONE_NEWNET
    if report.mode is not Mode.ROOT:
        flags |= linux.CLONE_NEWUSER
    uid, gid = os.getuid(), os.getgid()
    uid_map, gid_map = id_maps(report)
    apt_conf = None
    if len(uid_map) == 1:
        # apt drops privileges to `_apt` for downloads, which single-id mode cannot do; like
        # Charliecloud, tell it not to (a mounted conf file, never part of the layer).
        apt_conf = os.path.join(work, "apt-no-sandbox.conf")
        with open(apt_conf, "w") as f:
            f.write('APT::Sandbox::User "root";\n')
    fs = report.filesystem
    baseline = None
    if fs is Filesystem.COPY or (fs is Filesystem.FUSE_OVERLAYFS and spec.upper is None
                                 and len(spec.lowers) > 1):
        baseline = os.path.join(work, tree.BASELINE)
        fs = Filesystem.COPY
    plan = _Plan(flags, report.mode, spec.lowers, spec.upper, ovl_work, root, hosts, resolv,
                 report.mode is not Mode.ROOT, uid, gid, _last_cap(), uid_map, gid_map,
                 apt_conf, fs, shutil.which("fuse-overlayfs"), baseline)
    return plan, tmpdir


def id_maps(report: ModeReport | None = None) -> tuple[tuple[IdMap, ...], tuple[IdMap, ...]]:
    """The (uid_map, gid_map) sandboxes use in this mode: empty as root (no user namespace);
    0 → us in single-id mode; plus 1..n → the subordinate range in subid mode (podman's
    layout). The layer writer needs them to map the upper's host-side owners back."""
    report = report or detect()
    if report.mode is Mode.ROOT:
        return (), ()
    uid, gid = os.getuid(), os.getgid()
    uid_map: tuple[IdMap, ...] = (IdMap(0, uid, 1),)
    gid_map: tuple[IdMap, ...] = (IdMap(0, gid, 1),)
    if report.mode is Mode.ROOTLESS_SUBID:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        su, sg = subid_range("subuid", name, uid), subid_range("subgid", name, uid)
        if su and sg:
            uid_map += (IdMap(1, su[0], su[1]),)
            gid_map += (IdMap(1, sg[0], sg[1]),)
    return uid_map, gid_map


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def start(spec: SandboxSpec, *, stdin: Input = None, stdout: Output = None,
          stderr: Output = None) -> Process:
    """Start `spec` in the background; see `run`. Raises SandboxError for an invalid spec and
    SandboxUnavailable when this machine allows no sandbox (see `pybuild info`)."""
    report = detect()
    if not report.supported:
        raise _unavailable(report)
    _validate(spec)
    plan, tmpdir = _prepare(spec, report)

    parent_fds: dict[int, Output] = {}  # read ends of output pipes → callback
    child_stdio: dict[int, int] = {}  # target fd (0/1/2) → fd in the child
    to_close: list[int] = []
    stdin_data = None
    if stdin is None:
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        child_stdio[0] = devnull
        to_close.append(devnull)
    elif isinstance(stdin, bytes):
        r, w = os.pipe()
        child_stdio[0] = r
        to_close.append(r)
        os.set_blocking(w, False)
        stdin_data = (w, stdin)
    else:
        child_stdio[0] = stdin
    for target, out in ((1, stdout), (2, stderr)):
        if out is None:
            continue
        if isinstance(out, int):
            child_stdio[target] = out
        else:
            r, w = os.pipe()
            parent_fds[r] = out
            child_stdio[target] = w
            to_close.append(w)
    status_r, status_w = os.pipe()
    to_close.append(status_w)
    # Whoever forks first must not inherit another thread's half-made pipes: all fds are
    # O_CLOEXEC (Python's default) and the child closes everything it does not own.
    try:
        if plan.mode is Mode.ROOT:
            pid, lifeline_fd = _fork_root(spec, plan, child_stdio, status_w)
            lifeline: int | None = lifeline_fd
        else:
            pid, lifeline = _fork_rootless(spec, plan, child_stdio, status_w)
    except BaseException:
        for fd in (*to_close, status_r, *parent_fds):
            os.close(fd)
        if stdin_data:
            os.close(stdin_data[0])
        raise
    for fd in to_close:
        os.close(fd)
    return Process(spec, pid, status_r, parent_fds, stdin_data, tmpdir, lifeline,
                   plan.fs.value)


def changes(spec: SandboxSpec, result: ExecResult) -> tuple[Change, ...]:
    """The change set of a finished step (for `builder.oci.layers.write_layer`), read the way
    its filesystem was assembled: the overlay upperdir, or a diff of the copied tree."""
    from builder import snapshot  # the layer writer's dependencies load only when needed

    if spec.upper is None:
        raise SandboxError("the spec had no upper directory: no changes were captured")
    if result.filesystem == Filesystem.COPY.value:
        assert spec.work is not None
        base = tree.load_baseline(os.path.join(spec.work, tree.BASELINE))
        return snapshot.tree_changes(spec.upper, base, stubs=result.stubs)
    return snapshot.changes(spec.upper, stubs=result.stubs, lowers=spec.lowers)


def run(spec: SandboxSpec, *, stdin: Input = None, stdout: Output = None,
        stderr: Output = None) -> ExecResult:
    """Run `spec` to completion and return how it ended. Thread-safe (the executor runs steps
    in threads). Raises SandboxError when the process cannot be set up; a command that exits
    non-zero (or is killed, or times out) is a normal ExecResult, not an exception. On
    KeyboardInterrupt (or any exception while waiting) the sandbox is killed before the
    exception propagates."""
    return start(spec, stdin=stdin, stdout=stdout, stderr=stderr).wait()


# --- children (after fork: no locks, no imports, exit only with os._exit) ------------------

def _send(fd: int, kind: bytes, body: str | bytes = b"") -> None:
    data = kind + (body.encode(errors="replace") if isinstance(body, str) else body) + b"\0"
    try:
        os.write(fd, data)
    except OSError:
        pass


def _fork_root(spec: SandboxSpec, plan: _Plan, stdio: dict[int, int],
               status_w: int) -> tuple[int, int]:
    """Fork pid 1 straight into a new pid namespace (root mode, one fork).

    unshare(CLONE_NEWPID) only changes the namespace of this *thread's* future children, so
    the calling thread enters it, forks, and immediately setns()es back; other threads of
    the caller are never affected."""
    life_r, life_w = os.pipe()
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.unshare(linux.CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            linux.setns(own, linux.CLONE_NEWPID)
            raise
        if pid == 0:
            os.close(life_w)
            _c2(spec, plan, stdio, status_w, life_r, unshare_flags=plan.flags & ~linux.CLONE_NEWPID)
        linux.setns(own, linux.CLONE_NEWPID)
    finally:
        if own >= 0:
            os.close(own)
    os.close(life_r)
    _send(status_w, b"P", str(pid))
    # The lifeline's write end lives exactly as long as the caller: C2 checks it for the race
    # between fork and PR_SET_PDEATHSIG. The Process keeps it open until it is reaped.
    return pid, life_w


def _fork_rootless(spec: SandboxSpec, plan: _Plan, stdio: dict[int, int],
                   status_w: int) -> tuple[int, None]:
    """A user namespace cannot be entered by a multi-threaded process, so a first child (C1)
    creates all namespaces, then forks pid 1 and waits for it."""
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        _c1(spec, plan, parent_pid, stdio, status_w)  # never returns
    return pid, None


def _c1(spec: SandboxSpec, plan: _Plan, parent_pid: int, stdio: dict[int, int],
        status_w: int) -> None:
    code = 125
    try:
        linux.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != parent_pid:
            os._exit(125)
        _enter_userns(plan)
        life_r, life_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(life_w)
            _c2(spec, plan, stdio, status_w, life_r, unshare_flags=0)  # never returns
        os.close(life_r)
        _send(status_w, b"P", str(pid))
        os.close(status_w)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    except BaseException as exc:  # noqa: BLE001 - report, never unwind into the caller's code
        _send(status_w, b"E", _describe(exc))
    os._exit(code)


def _enter_userns(plan: _Plan) -> None:
    """Rootless: create all namespaces; map our uid/gid to 0 (single-id mode) or, with a
    subuid/subgid range, 0 → us and 1..n → the range via the setuid newuidmap/newgidmap.

    Those helpers must run OUTSIDE the new user namespace (a setuid binary is not setuid
    inside it), so a helper forked before unshare waits for the go and maps us."""
    if len(plan.uid_map) == 1:
        linux.unshare(plan.flags)
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {plan.uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {plan.gid} 1")
        return
    me = os.getpid()
    go_r, go_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            os.close(go_w)
            if os.read(go_r, 1) == b"1":
                code = 0
                for tool, maps in (("newuidmap", plan.uid_map), ("newgidmap", plan.gid_map)):
                    args = [tool, str(me)]
                    for m in maps:
                        args += [str(m.inside), str(m.outside), str(m.count)]
                    exe = shutil.which(tool) or f"/usr/bin/{tool}"
                    pid = os.posix_spawn(exe, args, {})
                    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
                        code = 1
        finally:
            os._exit(code)
    os.close(go_r)
    try:
        linux.unshare(plan.flags)
        os.write(go_w, b"1")
    finally:
        os.close(go_w)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError(errno.EPERM, "newuidmap/newgidmap failed to map the subordinate ids "
                      "(check /etc/subuid and /etc/subgid)")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _armed(life_r: int) -> None:
    """Arm PR_SET_PDEATHSIG, then close the fork race: a cut lifeline means the parent is gone."""
    linux.set_pdeathsig(signal.SIGKILL)
    if select.select([life_r], [], [], 0)[0]:
        os._exit(125)


def _c2(spec: SandboxSpec, plan: _Plan, stdio: dict[int, int], status_w: int, life_r: int,
        unshare_flags: int) -> None:
    """pid 1: build the root, start the command, then reap and forward signals until it exits."""
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, _INIT_SIGNALS)
        _armed(life_r)
        linux.set_name("pybuild-init")
        # Docker's and BuildKit's umask, whatever the caller's: the layer must not depend on
        # the shell pybuild was started from.
        os.umask(0o022)
        os.setsid()  # out of the terminal's process group: Ctrl-C reaches only pybuild
        for target, fd in stdio.items():
            if fd != target:
                os.dup2(fd, target)  # dup2 makes the target inheritable
        if unshare_flags:
            linux.unshare(unshare_flags)
        if spec.network == "none":
            linux.loopback_up()
        stubs = _build_root(spec, plan)
        _send(status_w, b"T", json.dumps(stubs))
        linux.sethostname(spec.hostname)
        passwd = _read_or_empty("/etc/passwd")
        group = _read_or_empty("/etc/group")
        user = users.resolve(spec.user, passwd, group, spec.groups)
        env = dict(e.partition("=")[::2] for e in spec.env)
        env.setdefault("HOME", user.home)
        env.setdefault("PATH", _DEFAULT_PATH)
        if not os.path.isdir(spec.cwd):
            os.makedirs(spec.cwd, 0o755)
        os.chdir(spec.cwd)
        # Docker's default capabilities only: a RUN step must not load modules or remount /.
        for cap in range(plan.last_cap + 1):
            if cap not in _KEEP_CAPS:
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
        # pid 1 itself drops to the user: it only reaps and signals its own child, and then
        # the command can be started with posix_spawn (vfork+exec) instead of a second fork.
        if plan.single_id:
            # Single-id mode: only 0 exists inside and setgroups(2) is denied (user_namespaces(7)).
            if user.uid != 0 or user.gid != 0:
                raise SandboxError(
                    f"user {spec.user!r} (uid {user.uid}, gid {user.gid}) cannot exist in "
                    "rootless single-id mode, which maps only root; add a subuid/subgid range "
                    "for this user (usermod --add-subuids/--add-subgids) to get rootless-subid "
                    "mode")
        else:
            os.setgroups(list(user.groups))
            os.setgid(user.gid)
            os.setuid(user.uid)
        if plan.single_id and seccomp.SUPPORTED:
            seccomp.install()  # needs CAP_SYS_ADMIN in the user namespace: before capset
        if user.uid == 0:
            # pid 1 keeps no more power than the command (which could ptrace it otherwise).
            linux.set_capabilities(sum(1 << c for c in _KEEP_CAPS))
        linux.prctl(linux.PR_SET_DUMPABLE, 0)  # and the command may not ptrace pid 1 at all
        _armed(life_r)  # changing credentials clears PDEATHSIG: re-arm it
        keep = sorted((status_w, life_r))
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, 65536)
    except BaseException as exc:  # noqa: BLE001
        _send(status_w, b"E", _describe(exc))
        os._exit(125)
    argv0 = spec.argv[0]
    try:
        path = _which(argv0, env["PATH"])
        # Python ignores SIGPIPE and SIGXFSZ, and pid 1 blocks the forwarded signals: the
        # command gets default dispositions and an empty mask.
        pid = os.posix_spawn(path, list(spec.argv), env, setsigmask=(),
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, *_FORWARD))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            where = "" if "/" in argv0 else " in $PATH"
            _send(status_w, b"X", f"exec: {argv0!r}: executable file not found{where}")
            _send(status_w, b"S", str(127 << 8))
            os._exit(127)
        _send(status_w, b"X", f"exec: {argv0!r}: {exc.strerror}")
        _send(status_w, b"S", str(126 << 8))
        os._exit(126)
    status = _init_loop(pid)
    _send(status_w, b"S", str(status))
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _read_or_empty(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _which(argv0: str, path: str) -> str:
    """execvp's lookup, against the spec's PATH inside the new root."""
    if "/" in argv0:
        return argv0
    denied = None
    for d in path.split(":"):
        cand = os.path.join(d or ".", argv0)
        if os.path.isfile(cand):
            if os.access(cand, os.X_OK):
                return cand
            denied = cand
    if denied:
        raise PermissionError(errno.EACCES, "permission denied", denied)
    raise FileNotFoundError(errno.ENOENT, "not found", argv0)


def _init_loop(main: int) -> int:
    """Reap every child; forward forwardable signals to `main`; return main's wait status."""
    while True:
        info = signal.sigwaitinfo(_INIT_SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            _try_kill(main, info.si_signo)
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == main:
                return status


# --- the root filesystem -------------------------------------------------------------------

def _stub(root: str, path: str, is_file: bool, stubs: list[str]) -> None:
    """Create `path` (absolute inside the new root) and any missing parents; record them.
    Raises SandboxError when a component is a symlink (it could point out of the root)."""
    rel = path.strip("/")
    if not rel:
        return
    parts = rel.split("/")
    cur = root
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        last = i == len(parts) - 1
        try:
            st = os.lstat(nxt)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            # Never follow a symlink out of the root while creating a mount point.
            target = os.readlink(nxt)
            raise SandboxError(f"mount point /{'/'.join(parts[:i + 1])} is a symlink "
                               f"(to {target}); refusing to mount over it")
        if st is None:
            if last and is_file:
                os.close(os.open(nxt, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            else:
                os.mkdir(nxt, 0o755)
            stubs.append("/".join(parts[: i + 1]))
        cur = nxt


def _build_root(spec: SandboxSpec, plan: _Plan) -> list[str]:
    """Mount the root at plan.root, the API filesystems and the spec's mounts, pivot into it.
    Returns the mount-point stubs created in the rootfs (relative paths)."""
    M = linux
    root = plan.root
    M.mount(None, "/", None, M.MS_REC | M.MS_PRIVATE)
    copied = None  # copy mode: the directory the step runs in
    if plan.fs is Filesystem.COPY:
        copied = plan.upper or os.path.join(os.path.dirname(root), "tree")
        os.makedirs(copied, exist_ok=True)
        tree.checkout(plan.lowers, copied)
        M.mount(copied, root, None, M.MS_BIND | M.MS_REC)
    elif plan.fs is Filesystem.FUSE_OVERLAYFS and (plan.upper is not None
                                                   or len(plan.lowers) > 1):
        opts = f"lowerdir={':'.join(reversed(plan.lowers))}"
        if plan.upper is not None:
            opts += f",upperdir={plan.upper},workdir={plan.ovl_work}"
        # fuse-overlayfs daemonizes once mounted; the daemon lives in our pid namespace and
        # dies with it, taking the mount along.
        exe = plan.fuse or "fuse-overlayfs"
        log = os.path.join(os.path.dirname(root), "fuse-overlayfs.log")
        quiet = [(os.POSIX_SPAWN_OPEN, fd, log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                 for fd in (1, 2)]
        pid = os.posix_spawn(exe, [exe, "-o", opts, root], {"PATH": _DEFAULT_PATH},
                             file_actions=quiet, setsigmask=(),
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            with open(log, errors="replace") as f:
                why = f.read().strip().splitlines()[-1:] or ["no message"]
            raise SandboxError(f"fuse-overlayfs could not mount the rootfs: {why[0]}")
        # pivot_root moves the root of every process of the mount namespace that sits on the
        # old one, and the daemon would then resolve its own paths through its own mount
        # (a deadlock). Pivot in a fresh copy of the namespace instead; the daemon stays.
        M.unshare(M.CLONE_NEWNS)
        M.mount(None, "/", None, M.MS_REC | M.MS_PRIVATE)
    elif plan.upper is not None:
        # overlay's lowerdir lists the TOP layer first; ours are lowest first.
        lower = ":".join(reversed(plan.lowers))
        opts = f"lowerdir={lower},upperdir={plan.upper},workdir={plan.ovl_work}"
        if plan.userxattr:
            opts += ",userxattr"
        M.mount("overlay", root, "overlay", 0, opts)
    elif len(plan.lowers) == 1:
        M.mount(plan.lowers[0], root, None, M.MS_BIND | M.MS_REC)
    else:
        lower = ":".join(reversed(plan.lowers))
        M.mount("overlay", root, "overlay", 0,
                f"lowerdir={lower}" + (",userxattr" if plan.userxattr else ""))
    stubs: list[str] = []
    for d in ("proc", "sys", "dev"):
        _stub(root, d, False, stubs)
    etc_files = [("etc/hosts", plan.hosts), ("etc/resolv.conf", plan.resolv)]
    if plan.apt_conf and os.path.isdir(f"{root}/etc/apt/apt.conf.d"):
        etc_files.append(("etc/apt/apt.conf.d/zz-pybuild-no-sandbox", plan.apt_conf))
    etc_mounts = []
    for rel, source in etc_files:
        if source is None:
            continue
        try:
            _stub(root, rel, True, stubs)
            etc_mounts.append((rel, source))
        except SandboxError:
            pass  # a symlinked /etc/resolv.conf (systemd images) is left as the image has it
    for m in spec.mounts:
        is_file = m.type == "bind" and not os.path.isdir(m.source or "")
        _stub(root, m.target, is_file, stubs)

    if copied is not None and plan.baseline:
        # After the stubs, before anything is mounted over them: the step's changes are
        # exactly what differs from this.
        tree.record_baseline(copied, plan.baseline)

    nosuid_nodev_noexec = M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC
    M.mount("proc", f"{root}/proc", "proc", nosuid_nodev_noexec)
    try:
        M.mount("sysfs", f"{root}/sys", "sysfs", nosuid_nodev_noexec | M.MS_RDONLY)
    except OSError:
        # A user namespace that does not own the network namespace may not mount sysfs.
        M.mount("/sys", f"{root}/sys", None, M.MS_BIND | M.MS_REC)
        M.mount(None, f"{root}/sys", None,
                M.MS_REMOUNT | M.MS_BIND | M.MS_RDONLY | nosuid_nodev_noexec)
    for path in MASKED_PATHS:
        target = root + path
        if os.path.isdir(target):
            M.mount("tmpfs", target, "tmpfs", M.MS_RDONLY, "size=0")
        elif os.path.exists(target):
            M.mount("/dev/null", target, None, M.MS_BIND)
    for path in READONLY_PATHS:
        target = root + path
        if os.path.exists(target):
            M.mount(target, target, None, M.MS_BIND | M.MS_REC)
            M.mount(None, target, None, M.MS_REMOUNT | M.MS_BIND | M.MS_RDONLY
                    | nosuid_nodev_noexec)
    dev = f"{root}/dev"
    M.mount("tmpfs", dev, "tmpfs", M.MS_NOSUID | M.MS_STRICTATIME, "mode=755,size=65536k")
    for name in _DEVICES:
        target = f"{dev}/{name}"
        if plan.mode is Mode.ROOT:
            # As root, device nodes (what runc does): no mount to set up and tear down.
            os.mknod(target, stat.S_IFCHR | 0o666, _DEVICE_NUMBERS[name])
            os.chmod(target, 0o666)
        else:  # a user namespace may not mknod: bind the host's nodes (runc rootless too)
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
            M.mount(f"/dev/{name}", target, None, M.MS_BIND)
    os.mkdir(f"{dev}/pts", 0o755)
    os.mkdir(f"{dev}/shm", 0o1777)
    os.mkdir(f"{dev}/mqueue", 0o755)
    pts_opts = "newinstance,ptmxmode=0666,mode=0620"
    try:
        M.mount("devpts", f"{dev}/pts", "devpts", M.MS_NOSUID | M.MS_NOEXEC, pts_opts + ",gid=5")
    except OSError:
        M.mount("devpts", f"{dev}/pts", "devpts", M.MS_NOSUID | M.MS_NOEXEC, pts_opts)
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    M.mount("shm", f"{dev}/shm", "tmpfs", nosuid_nodev_noexec, "mode=1777,size=65536k")
    try:
        M.mount("mqueue", f"{dev}/mqueue", "mqueue", nosuid_nodev_noexec)
    except OSError:
        pass
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("core", "/proc/kcore")):
        os.symlink(target, f"{dev}/{link}")

    for rel, source in etc_mounts:
        M.mount(source, f"{root}/{rel}", None, M.MS_BIND)
    for m in spec.mounts:
        _mount_one(root, m)
    if spec.readonly_rootfs:
        M.mount(None, root, None, M.MS_REMOUNT | M.MS_BIND | M.MS_RDONLY)

    # pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only
    # the new root (the runc trick: no put_old directory to create or remove).
    os.chdir(root)
    M.pivot_root(".", ".")
    M.umount2(".", M.MNT_DETACH)
    os.chdir("/")
    return stubs


def _mount_one(root: str, m: Mount) -> None:
    M = linux
    target = root + "/" + m.target.strip("/")
    if m.type == "tmpfs":
        flags = M.MS_NOSUID | M.MS_NODEV | (M.MS_RDONLY if m.readonly else 0)
        M.mount("tmpfs", target, "tmpfs", flags, ",".join(m.options) or None)
        return
    M.mount(m.source, target, None, M.MS_BIND | M.MS_REC)
    if m.readonly:
        M.mount(None, target, None, M.MS_REMOUNT | M.MS_BIND | M.MS_RDONLY)
