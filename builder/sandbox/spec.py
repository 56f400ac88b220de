"""What one sandboxed process is (SandboxSpec, Mount, IdMap) and how it ended (ExecResult).

Pure data: no I/O. The sandbox knows nothing of Dockerfiles or images; callers (the executor
for RUN steps, `pybuild run` for containers) translate their world into a SandboxSpec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Network = Literal["none", "host"]
MountType = Literal["bind", "tmpfs"]


@dataclass(frozen=True, slots=True)
class Mount:
    """One extra mount inside the sandbox.

    `target` is an absolute path inside the rootfs; it is created (as an empty directory, or an
    empty file when a bind source is a file) if missing, and such stubs never reach the change
    set. `source` is a host path for `bind` (ignored for `tmpfs`). `options` are extra
    filesystem options for tmpfs (e.g. ``("size=64m", "mode=1777")``).
    """

    target: str
    type: MountType = "bind"
    source: str | None = None
    readonly: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IdMap:
    """One line of /proc/PID/uid_map or gid_map: `count` ids from `inside` map to `outside`."""

    inside: int
    outside: int
    count: int


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything needed to run one process in a fresh set of namespaces.

    Filesystem:
      - `lowers`: read-only layer directories, LOWEST FIRST (already unpacked by the store, with
        overlay-format whiteouts: char 0:0 devices and `*.overlay.opaque` xattrs), or a single
        rootfs directory.
      - `upper`: an empty directory that receives every change the process makes (overlayfs
        upperdir); after the run `builder.snapshot.changes(upper)` turns it into a ChangeSet.
        None means no change capture: a single lower is bind-mounted (writable unless
        `readonly_rootfs`), several lowers are stacked read-only.
      - `work`: an empty scratch directory owned by the caller, on the same filesystem as
        `upper`. The sandbox keeps its overlay workdir, mount point and generated files
        (/etc/hosts, /etc/resolv.conf) inside it; the caller removes it afterwards.

    Process: `argv` is exec'd directly (no shell; argv[0] is looked up in the spec's PATH inside
    the rootfs). `env` is the complete environment as ``("KEY=value", ...)``; HOME is added from
    /etc/passwd when absent (Docker does the same). `cwd` is created if missing. `user` is
    ``name``, ``uid``, ``uid:gid``, ``name:group`` or ``uid:group``, resolved from the rootfs'
    /etc/passwd and /etc/group; `groups` are extra supplementary groups (names or gids).

    `network`: "none" = own network namespace with only loopback (up); "host" = the host's
    network, with the host's /etc/resolv.conf. /etc/hosts (localhost + hostname) is provided in
    both cases. `timeout` in seconds: the whole sandbox is killed when it expires.
    """

    lowers: tuple[str, ...]
    argv: tuple[str, ...]
    upper: str | None = None
    work: str | None = None
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    cwd: str = "/"
    user: str = "0"
    groups: tuple[str, ...] = ()
    hostname: str = "pybuild"
    network: Network = "none"
    mounts: tuple[Mount, ...] = ()
    readonly_rootfs: bool = False
    timeout: float | None = None
    # Extra /etc/hosts lines ("IP name ...") after the defaults (docker's --add-host).
    extra_hosts: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How the process ended.

    `exit_code` follows the shell convention: the exit status, or 128 + signal number when the
    process was killed by a signal (`signal` is then set). `timed_out` is True when the sandbox
    was killed because `timeout` expired (exit_code is then 137). `error` is set when the
    command could not be started at all (not found → 127, not executable → 126), with a message.
    `stubs` lists the paths (relative to the rootfs, parents before children) that the sandbox
    itself created in the upper layer as mount points; the snapshot drops them. Get the
    step's change set with `builder.sandbox.changes(spec, result)`.
    """

    exit_code: int
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None
    duration: float = 0.0
    stubs: tuple[str, ...] = ()
    # How the rootfs was assembled ("overlayfs", "overlayfs-userxattr", "fuse-overlayfs",
    # "copy"): tells builder.sandbox.changes() how to read the step's changes.
    filesystem: str = "overlayfs"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
