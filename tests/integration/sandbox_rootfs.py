"""Test helpers: a busybox-static rootfs made at test time, and a runner of a SandboxSpec
through real runc (the reference runtime). Nothing binary is committed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from builder.sandbox import ExecResult, SandboxSpec, detect
from builder.sandbox.mode import Mode
from builder.sandbox.ociconfig import runtime_config
from builder.sandbox.runner import host_resolv, hosts_text
from builder.sandbox.users import resolve

BUSYBOX = shutil.which("busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:App:/home/app:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
app:x:1000:
wheel:x:10:app
audio:x:29:app
other:x:2000:
"""


def make_rootfs(root: Path, *, image_like: bool = False) -> Path:
    """A minimal rootfs: /bin/busybox with every applet linked, /etc/passwd and /etc/group.

    `image_like` adds what real base images ship (empty /proc, /sys, /dev, /etc/hosts,
    /etc/resolv.conf), so no mount-point stubs are needed (the benchmark's realistic case);
    without it the sandbox must create them (the stub logic's test case)."""
    if BUSYBOX is None:
        raise RuntimeError("busybox not installed (Debian package busybox-static)")
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "root").mkdir(mode=0o700)
    (root / "home" / "app").mkdir(parents=True)
    os.chown(root / "home" / "app", 1000, 1000) if os.geteuid() == 0 else None
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    if image_like:
        for d in ("proc", "sys", "dev"):
            (root / d).mkdir(mode=0o755)
        (root / "etc" / "hosts").write_text("")
        (root / "etc" / "resolv.conf").write_text("")
    return root


def runc_run(spec: SandboxSpec, bundle: Path, rootfs: Path) -> tuple[int, bytes, bytes]:
    """Run `spec` with runc over a private copy of `rootfs`; (exit code, stdout, stderr)."""
    runc = shutil.which("runc")
    assert runc, "runc not installed"
    bundle.mkdir(parents=True, exist_ok=True)
    root = bundle / "rootfs"
    if not root.exists():
        subprocess.run(["cp", "-a", str(rootfs), str(root)], check=True)
    user = resolve(spec.user, (root / "etc/passwd").read_text(),
                   (root / "etc/group").read_text(), spec.groups)
    hosts = bundle / "hosts"
    hosts.write_text(hosts_text(spec))
    resolv = None
    if spec.network == "host":
        resolv = bundle / "resolv.conf"
        resolv.write_text(host_resolv())
    cfg = runtime_config(spec, user, str(root), str(hosts), str(resolv) if resolv else None)
    (bundle / "config.json").write_text(json.dumps(cfg))
    cid = f"pybuild-test-{os.getpid()}-{bundle.name}"
    proc = subprocess.run([runc, "--root", str(bundle / "state"), "run", "--bundle",
                           str(bundle), cid], capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def skip_reason_root() -> str | None:
    """Why root-mode sandbox tests cannot run here, or None."""
    if BUSYBOX is None:
        return "busybox not installed (Debian package busybox-static)"
    if os.geteuid() != 0:
        return "not running as root"
    report = detect()
    if report.mode is not Mode.ROOT:
        return f"root sandbox mode unavailable: {report.reason}"
    return None


def mounts_mentioning(*paths: str | Path) -> list[str]:
    """Host mount table lines that mention any of `paths` (mount point, source or options).

    Tests compare these before and after instead of the whole table: other processes on the
    machine may mount and unmount things meanwhile; a leaked sandbox mount always names the
    test's own directories."""
    needles = [str(p) for p in paths]
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if any(n in line for n in needles)]


def collect(result_lines: list[bytes]) -> str:
    return b"".join(result_lines).decode()


__all__ = ["ExecResult", "collect", "make_rootfs", "mounts_mentioning", "runc_run",
           "skip_reason_root"]
