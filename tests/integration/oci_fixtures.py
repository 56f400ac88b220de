"""Test images made at test time from the host's busybox-static (nothing binary committed)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package {tool}; see .ci/setup)")


def busybox_rootfs(root: Path) -> Path:
    """A small but varied rootfs: busybox + applet symlinks, a hardlink, a setuid file, an
    empty dir, a file with a capability-like xattr, fixed mtimes."""
    if not BUSYBOX.exists():
        pytest.skip("/bin/busybox not found (Debian package busybox-static)")
    for d in ("bin", "etc", "tmp", "var/empty", "usr/sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo"):
        os.symlink("busybox", root / "bin" / applet)
    os.link(root / "bin" / "busybox", root / "usr" / "sbin" / "busybox-hard")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "hostname").write_text("pybuild\n")
    (root / "usr" / "sbin" / "su-ish").write_text("#!/bin/sh\n")
    os.chmod(root / "usr" / "sbin" / "su-ish", 0o4755)
    os.chmod(root / "tmp", 0o1777)
    os.setxattr(root / "etc" / "passwd", "user.pybuild", b"kept")
    if os.geteuid() == 0:
        os.chown(root / "etc" / "hostname", 100, 101)
        # cap_net_raw+ep as a VFS_CAP_REVISION_2 security.capability value
        cap = bytes.fromhex("0100000200200000000000000000000000000000")
        os.setxattr(root / "bin" / "busybox", "security.capability", cap)
    for dirpath, dirs, files in os.walk(root, topdown=False):
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (1_700_000_000,) * 2, follow_symlinks=False)
    return root


def tree_listing(root: Path) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, mtime, size-or-target, content sha256, xattrs)."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = Path(dirpath, n)
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p), st.st_uid, st.st_gid)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            else:
                xattrs = {k: os.getxattr(p, k) for k in sorted(os.listxattr(p))}
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                            int(st.st_mtime), st.st_size,
                            hashlib.sha256(p.read_bytes()).hexdigest(), st.st_nlink, xattrs)
    return out
