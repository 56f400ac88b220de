"""SandboxSpec → OCI runtime-spec config.json (for runc and friends), with the same
environment our own runner builds, so the reference runtime can run any spec we run."""

from __future__ import annotations

from typing import Any

from builder.sandbox.spec import SandboxSpec
from builder.sandbox.users import ExecUser

# Docker's default capability set (moby/oci/caps/defaults.go). Root-mode sandboxes keep only
# these in the bounding set, exactly like `docker run` and BuildKit's RUN.
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
# Numbers from <linux/capability.h>.
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
    "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}
# /proc entries hidden (bound to /dev/null or an empty read-only tmpfs) and made read-only,
# as runc/Docker do by default (moby/oci/defaults.go).
MASKED_PATHS = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                "/proc/acpi", "/proc/scsi", "/sys/firmware")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def runtime_config(spec: SandboxSpec, user: ExecUser, rootfs: str, hosts: str,
                   resolv: str | None) -> dict[str, Any]:
    """The config.json for running `spec` under an OCI runtime with `rootfs` as root.

    `user` is the resolved user (builder.sandbox.users.resolve against the rootfs); `hosts`
    and `resolv` are host files bind-mounted over /etc/hosts and /etc/resolv.conf."""
    env = list(spec.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    caps = list(DEFAULT_CAPS) if user.uid == 0 else []
    nosuid = ["nosuid", "noexec", "nodev"]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": nosuid},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": [*nosuid, "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*nosuid, "ro"]},
        {"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind"]},
    ]
    if resolv:
        mounts.append({"destination": "/etc/resolv.conf", "type": "bind", "source": resolv,
                       "options": ["rbind"]})
    for m in spec.mounts:
        if m.type == "tmpfs":
            opts = ["nosuid", "nodev", *m.options] + (["ro"] if m.readonly else [])
            mounts.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                           "options": opts})
        else:
            mounts.append({"destination": m.target, "type": "bind", "source": m.source,
                           "options": ["rbind", "ro" if m.readonly else "rw"]})
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if spec.network == "none":
        namespaces.append({"type": "network"})
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.groups)},
            "args": list(spec.argv),
            "env": env,
            "cwd": spec.cwd,
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
