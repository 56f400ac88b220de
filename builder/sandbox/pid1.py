"""The processes after fork: entering the namespaces (and the user namespace when rootless),
pid 1 (build the root, drop privileges, start the command, reap and forward signals).

Process tree (no new Python interpreter, no helper binary: the caller's own os.fork):

    root:      caller ─ fork ─▶ pid 1 ─ posix_spawn ─▶ command (pid 2)
               (the calling thread enters a new pid namespace for its children only, forks,
               and setns()es straight back; pid 1 unshares mount/uts/ipc[/net])
    rootless:  caller ─ fork ─▶ C1 (user namespace + all others) ─ fork ─▶ pid 1 ─ … as above

Pid 1 stays as init: it reaps orphans, forwards signals to the command, and exits with the
command's status, whereupon the kernel kills whatever is left in the namespace.

Code here runs in a copy of a possibly multi-threaded process: it only calls preloaded
modules (os, ctypes wrappers, signal) and never takes a lock another thread could hold; it
leaves only through os._exit.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal

from builder.sandbox import linux, seccomp, tree, users
from builder.sandbox.mode import Filesystem
from builder.sandbox.plan import (
    DEFAULT_PATH,
    FORWARD_SIGNALS,
    INIT_SIGNALS,
    KEEP_CAPS,
    Plan,
    SandboxError,
    describe,
    send,
    try_kill,
)
from builder.sandbox.rootfs import build_root
from builder.sandbox.spec import IdMap, SandboxSpec


def fork_root(spec: SandboxSpec, plan: Plan, stdio: dict[int, int],
              status_w: int) -> tuple[int, int]:
    """Fork pid 1 straight into a new pid namespace (root mode, one fork).

    unshare(CLONE_NEWPID) only changes the namespace of this *thread's* future children, so
    the calling thread enters it, forks, and immediately setns()es back; other threads of
    the caller are never affected."""
    life_r, life_w = os.pipe()
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    entered = False
    try:
        linux.unshare(linux.CLONE_NEWPID)
        entered = True
        pid = os.fork()
        if pid == 0:
            os.close(life_w)
            _c2(spec, plan, stdio, status_w, life_r, unshare_flags=plan.flags & ~linux.CLONE_NEWPID)
    finally:
        # Always back, even when Ctrl-C lands between the calls: this thread's later children
        # (subprocess, the next sandbox) must be born in the caller's own pid namespace.
        if entered:
            linux.setns(own, linux.CLONE_NEWPID)
        os.close(own)
    os.close(life_r)
    send(status_w, b"P", str(pid))
    # The lifeline's write end lives exactly as long as the caller: C2 checks it for the race
    # between fork and PR_SET_PDEATHSIG. The Process keeps it open until it is reaped.
    return pid, life_w


def fork_rootless(spec: SandboxSpec, plan: Plan, stdio: dict[int, int],
                  status_w: int) -> tuple[int, None]:
    """A user namespace cannot be entered by a multi-threaded process, so a first child (C1)
    creates all namespaces, then forks pid 1 and waits for it."""
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        _c1(spec, plan, parent_pid, stdio, status_w)  # never returns
    return pid, None


def _c1(spec: SandboxSpec, plan: Plan, parent_pid: int, stdio: dict[int, int],
        status_w: int) -> None:
    code = 125
    try:
        linux.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != parent_pid:
            os._exit(125)
        os.setsid()  # out of the terminal's process group: Ctrl-C reaches only pybuild
        enter_userns(plan)
        # Copy strategy: hold the host directories by descriptor for the conversion at the end
        # (paths are resolved once, before anything runs in the sandbox).
        keep = None
        if plan.fs is Filesystem.COPY and plan.upper and plan.baseline:
            keep = (os.open(plan.upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
                    os.open(os.path.dirname(plan.baseline),
                            os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        # Relay signals from the caller to pid 1 (the caller may not signal pid 1 itself once
        # it runs as a subordinate id). Blocked before the fork: pid 1 inherits the mask.
        signal.pthread_sigmask(signal.SIG_BLOCK, INIT_SIGNALS)
        life_r, life_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(life_w)
            # pid 1 gets its own mount namespace: this process stays outside the container's
            # mounts (and its pivot_root), free to rewrite the upper afterwards.
            _c2(spec, plan, stdio, status_w, life_r,
                unshare_flags=linux.CLONE_NEWNS)  # never returns
        os.close(life_r)
        send(status_w, b"P", str(pid))
        status = _relay(pid)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        if keep is not None:
            upper_fd, work_fd = keep
            try:
                fd = os.open(os.path.basename(plan.baseline or ""), os.O_RDONLY,
                             dir_fd=work_fd)
            except FileNotFoundError:
                fd = -1  # pid 1 failed before the copy was complete: it reported why
            if fd >= 0:
                with os.fdopen(fd) as f:
                    base = {k: (v[0], v[1]) for k, v in json.load(f).items()}
                os.fchdir(upper_fd)
                tree.to_overlay_upper(".", base, "user.overlay.opaque")
    except BaseException as exc:  # noqa: BLE001 - report, never unwind into the caller's code
        send(status_w, b"E", describe(exc))
    os._exit(code)


def _relay(child: int) -> int:
    """Forward forwardable signals to `child` until it exits; return its wait status."""
    while True:
        info = signal.sigwaitinfo(INIT_SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            try_kill(child, info.si_signo)
            continue
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            return status


def enter_userns(plan: Plan) -> None:
    """Rootless: create all namespaces; map our uid/gid to 0 (single-id mode) or, with a
    subuid/subgid range, 0 → us and 1..n → the range via the setuid newuidmap/newgidmap.

    Those helpers must run OUTSIDE the new user namespace (a setuid binary is not setuid
    inside it), so a helper forked before unshare waits for the go and maps us."""
    if len(plan.uid_map) == 1:
        linux.unshare(plan.flags & ~linux.CLONE_NEWNS)
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
        linux.unshare(plan.flags & ~linux.CLONE_NEWNS)
        os.write(go_w, b"1")
    finally:
        os.close(go_w)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError(errno.EPERM, "newuidmap/newgidmap failed to map the subordinate ids "
                      "(check /etc/subuid and /etc/subgid)")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _armed(life_r: int) -> None:
    """Arm PR_SET_PDEATHSIG, then close the fork race: a cut lifeline means the parent is gone."""
    linux.set_pdeathsig(signal.SIGKILL)
    if select.select([life_r], [], [], 0)[0]:
        os._exit(125)


def _c2(spec: SandboxSpec, plan: Plan, stdio: dict[int, int], status_w: int, life_r: int,
        unshare_flags: int) -> None:
    """pid 1: build the root, start the command, then reap and forward signals until it exits."""
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, INIT_SIGNALS)
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
        stubs = build_root(spec, plan)
        send(status_w, b"T", json.dumps(stubs))
        linux.sethostname(spec.hostname)
        passwd = _read_or_empty("/etc/passwd")
        group = _read_or_empty("/etc/group")
        user = users.resolve(spec.user, passwd, group, spec.groups)
        env = dict(e.partition("=")[::2] for e in spec.env)
        env.setdefault("HOME", user.home)
        env.setdefault("PATH", DEFAULT_PATH)
        if not os.path.isdir(spec.cwd):
            os.makedirs(spec.cwd, 0o755)
        os.chdir(spec.cwd)
        # Docker's default capabilities only: a RUN step must not load modules or remount /.
        for cap in range(plan.last_cap + 1):
            if cap not in KEEP_CAPS:
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
            _check_mapped(spec, plan, user)
            os.setgroups(list(user.groups))
            os.setgid(user.gid)
            os.setuid(user.uid)
        if plan.single_id and seccomp.SUPPORTED:
            seccomp.install()  # needs CAP_SYS_ADMIN in the user namespace: before capset
        if user.uid == 0:
            # pid 1 keeps no more power than the command (which could ptrace it otherwise).
            linux.set_capabilities(sum(1 << c for c in KEEP_CAPS))
        linux.prctl(linux.PR_SET_DUMPABLE, 0)  # and the command may not ptrace pid 1 at all
        _armed(life_r)  # changing credentials clears PDEATHSIG: re-arm it
        keep = sorted((status_w, life_r))
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, 65536)
    except BaseException as exc:  # noqa: BLE001
        send(status_w, b"E", describe(exc))
        os._exit(125)
    argv0 = spec.argv[0]
    try:
        path = _which(argv0, env["PATH"])
        # Python ignores SIGPIPE and SIGXFSZ, and pid 1 blocks the forwarded signals: the
        # command gets default dispositions and an empty mask.
        pid = os.posix_spawn(path, list(spec.argv), env, setsigmask=(),
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, *FORWARD_SIGNALS))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            where = "" if "/" in argv0 else " in $PATH"
            send(status_w, b"X", f"exec: {argv0!r}: executable file not found{where}")
            send(status_w, b"S", str(127 << 8))
            os._exit(127)
        send(status_w, b"X", f"exec: {argv0!r}: {exc.strerror}")
        send(status_w, b"S", str(126 << 8))
        os._exit(126)
    status = _init_loop(pid)
    send(status_w, b"S", str(status))
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _mapped(i: int, maps: tuple[IdMap, ...]) -> bool:
    return any(m.inside <= i < m.inside + m.count for m in maps)


def _check_mapped(spec: SandboxSpec, plan: Plan, user: users.ExecUser) -> None:
    """Rootless: every id the command gets must exist in the user namespace's map."""
    if not plan.uid_map:
        return
    top_u = max(m.inside + m.count for m in plan.uid_map) - 1
    top_g = max(m.inside + m.count for m in plan.gid_map) - 1
    if not _mapped(user.uid, plan.uid_map):
        raise SandboxError(f"user {spec.user!r} has uid {user.uid}, outside this rootless "
                           f"sandbox's ids 0-{top_u} (the /etc/subuid range)")
    for gid in (user.gid, *user.groups):
        if not _mapped(gid, plan.gid_map):
            raise SandboxError(f"user {spec.user!r} needs gid {gid}, outside this rootless "
                               f"sandbox's ids 0-{top_g} (the /etc/subgid range)")


def _read_or_empty(path: str) -> str:
    """The file's text, "" when absent (raw os calls: the io stack costs more than the read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


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
        info = signal.sigwaitinfo(INIT_SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            try_kill(main, info.si_signo)
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
