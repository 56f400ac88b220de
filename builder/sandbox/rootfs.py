"""Builds the sandbox's root filesystem inside pid 1's private mount namespace: the layers
(overlayfs, fuse-overlayfs or a copy), /proc /sys /dev, /etc/hosts and resolv.conf, the
spec's mounts, then pivot_root. Runs after fork: no locks, no imports."""

from __future__ import annotations

import os
import signal
import stat

from builder.sandbox import linux, tree
from builder.sandbox.mode import Filesystem, Mode
from builder.sandbox.ociconfig import MASKED_PATHS, READONLY_PATHS
from builder.sandbox.plan import DEFAULT_PATH, DEVICE_NUMBERS, DEVICES, Plan, SandboxError
from builder.sandbox.spec import Mount, SandboxSpec


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


def build_root(spec: SandboxSpec, plan: Plan) -> list[str]:
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
        pid = os.posix_spawn(exe, [exe, "-o", opts, root], {"PATH": DEFAULT_PATH},
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
    for name in DEVICES:
        target = f"{dev}/{name}"
        if plan.mode is Mode.ROOT:
            # As root, device nodes (what runc does): no mount to set up and tear down.
            os.mknod(target, stat.S_IFCHR | 0o666, DEVICE_NUMBERS[name])
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
