"""Starts one SandboxSpec (`start`, `run`) and reads what it changed (`changes`): validates
the spec, prepares the work directory, picks the process tree for the detected mode.

Cleanup guarantees: every mount lives only in the sandbox's private mount namespace, which
the kernel tears down when its last process dies; pid 1 dies with the thread that started it
(PR_SET_PDEATHSIG, plus a lifeline pipe against the fork race), and everything in the pid
namespace dies with pid 1. `Process.kill()` (used on timeout, Ctrl-C, or any error while
waiting) SIGKILLs pid 1 and waits for it, so a returned run() leaves nothing behind.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import tempfile
from typing import TYPE_CHECKING

from builder.sandbox import linux, tree
from builder.sandbox.mode import (
    Filesystem,
    Mode,
    ModeReport,
    describe,
    detect,
    in_child,
    subid_range,
)
from builder.sandbox.pid1 import enter_userns, fork_root, fork_rootless
from builder.sandbox.plan import (
    Input,
    Output,
    Plan,
    SandboxError,
    SandboxUnavailable,
    try_kill,
)
from builder.sandbox.process import Process
from builder.sandbox.spec import ExecResult, IdMap, SandboxSpec

if TYPE_CHECKING:
    from builder.oci.layers import Change


def _unavailable(report: ModeReport) -> SandboxUnavailable:
    return SandboxUnavailable(f"cannot run a sandboxed process here: {report.reason}",
                              hint=report.fix or "run `pybuild info` for details")


def hosts_text(spec: SandboxSpec) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"127.0.1.1\t{spec.hostname}", *spec.extra_hosts]
    return "\n".join(lines) + "\n"


def host_resolv() -> str:
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


def _prepare(spec: SandboxSpec, report: ModeReport, work: str) -> Plan:
    """Create the layout in the work directory and compute the namespace flags (parent
    side, before fork)."""
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    ovl_work = None
    if spec.upper is not None:
        ovl_work = os.path.join(work, "ovl")
        os.makedirs(ovl_work, exist_ok=True)
    hosts = os.path.join(work, "hosts")
    with open(hosts, "w") as f:
        f.write(hosts_text(spec))
    resolv = None
    if spec.network == "host":
        resolv = os.path.join(work, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(host_resolv())
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
    plan = Plan(flags, report.mode, spec.lowers, spec.upper, ovl_work, root, hosts, resolv,
                 report.mode is not Mode.ROOT, uid, gid, _last_cap(), uid_map, gid_map,
                 apt_conf, fs, shutil.which("fuse-overlayfs"), baseline)
    return plan


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


def remove_tree(path: str) -> None:
    """Remove a directory a sandbox wrote (an upper, a work directory), whoever owns what is
    in it. Rootless, files belong to ids the caller cannot touch (subordinate ids, overlay's
    mode-000 work dirs), so the removal runs in a user namespace with the sandboxes' id map,
    as `podman unshare rm -rf` does. Missing paths are fine; raises SandboxError otherwise."""
    if not os.path.lexists(path):
        return
    report = detect()
    if report.mode is Mode.ROOT or not report.supported:
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise SandboxError(f"cannot remove {path}: {exc}") from None
        return
    uid_map, gid_map = id_maps(report)
    plan = Plan(linux.CLONE_NEWUSER, report.mode, (), None, None, "", "", None, True,
                os.getuid(), os.getgid(), 0, uid_map, gid_map)

    def remove() -> None:
        enter_userns(plan)
        shutil.rmtree(path)

    ok, err = in_child(remove)  # a user namespace needs a single-threaded process: a child
    if not ok:
        raise SandboxError(f"cannot remove {path}: {err or 'the helper failed'}")


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
    work = spec.work or tempfile.mkdtemp(prefix="pybuild-sandbox-")
    tmpdir = None if spec.work else work  # ours to remove
    parent_fds: dict[int, Output] = {}  # read ends of output pipes → callback
    child_stdio: dict[int, int] = {}  # target fd (0/1/2) → fd in the child
    to_close: list[int] = []  # the child's ends: closed here once it has forked
    opened: list[int] = []  # every descriptor this call made, for cleanup on failure
    stdin_data = None
    pid = None
    try:
        plan = _prepare(spec, report, work)
        if stdin is None:
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            opened.append(devnull)
            child_stdio[0] = devnull
            to_close.append(devnull)
        elif isinstance(stdin, bytes):
            r, w = os.pipe()
            opened += (r, w)
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
                opened += (r, w)
                parent_fds[r] = out
                child_stdio[target] = w
                to_close.append(w)
        status_r, status_w = os.pipe()
        opened += (status_r, status_w)
        to_close.append(status_w)
        # Whoever forks first must not inherit another thread's half-made pipes: all fds are
        # O_CLOEXEC (Python's default) and the child closes everything it does not own.
        lifeline: int | None
        if plan.mode is Mode.ROOT:
            pid, lifeline = fork_root(spec, plan, child_stdio, status_w)
        else:
            pid, lifeline = fork_rootless(spec, plan, child_stdio, status_w)
        if lifeline is not None:
            opened.append(lifeline)
        for fd in to_close:
            os.close(fd)
            opened.remove(fd)
        after = None
        if plan.fs is Filesystem.COPY and plan.upper and plan.baseline \
                and plan.mode is Mode.ROOT:
            upper, base = plan.upper, plan.baseline

            def after() -> None:  # rootless: C1 does this inside the user namespace
                if os.path.exists(base):  # else pid 1 failed before the copy was complete
                    tree.to_overlay_upper(upper, tree.load_baseline(base),
                                          "trusted.overlay.opaque")

        return Process(spec, pid, status_r, parent_fds, stdin_data, tmpdir, lifeline,
                       plan.fs.value, after)
    except BaseException as exc:
        # Nothing half-made survives: the child (if any) is killed and reaped, every
        # descriptor this call opened is closed and the temporary work directory removed.
        if pid is not None:
            try_kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in opened:
            os.close(fd)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise SandboxError(f"cannot start the sandbox: {describe(exc)}",
                               hint="the machine may be out of processes or descriptors "
                                    "(ulimit -u, ulimit -n)") from None
        raise


def changes(spec: SandboxSpec, result: ExecResult) -> tuple[Change, ...]:
    """The change set of a finished step (for `builder.oci.layers.write_layer`). Whatever the
    filesystem strategy, `spec.upper` is an overlay-format upper directory once `run()`
    returned; this reads it and drops the sandbox's mount-point stubs. Each change carries
    this mode's id mapping (`id_maps()`), so the layer records container-side owners."""
    from builder import snapshot  # the layer writer's dependencies load only when needed

    if spec.upper is None:
        raise SandboxError("the spec had no upper directory: no changes were captured")
    return snapshot.changes(spec.upper, stubs=result.stubs, lowers=spec.lowers)


def run(spec: SandboxSpec, *, stdin: Input = None, stdout: Output = None,
        stderr: Output = None) -> ExecResult:
    """Run `spec` to completion and return how it ended. Thread-safe (the executor runs steps
    in threads). Raises SandboxError when the process cannot be set up; a command that exits
    non-zero (or is killed, or times out) is a normal ExecResult, not an exception. On
    KeyboardInterrupt (or any exception while waiting) the sandbox is killed before the
    exception propagates."""
    return start(spec, stdin=stdin, stdout=stdout, stderr=stderr).wait()
