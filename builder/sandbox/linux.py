"""The one owner of the Linux system calls Python 3.11's os module lacks: unshare, mount,
umount2, pivot_root, prctl (and sethostname via socket). Thin ctypes wrappers that raise OSError.

Everything here must be safe to call in a child forked from a threaded process: no locks, no
imports, no allocation beyond what ctypes does per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# <linux/sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
SECCOMP_MODE_FILTER = 2
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong)
_libc.syscall.restype = ctypes.c_long
_NR_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203,
                  "s390x": 217}.get(os.uname().machine, 155)


def _check(ret: int, what: str, path: str | None = None) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        where = f" {path}" if path else ""
        raise OSError(err, f"{what}{where}: {os.strerror(err)}")


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return s.encode()


def unshare(flags: int) -> None:
    """unshare(2); os.unshare where Python has it (3.12+)."""
    fn = getattr(os, "unshare", None)
    if fn is not None:
        fn(flags)
        return
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | bytes | None, target: str | bytes, fstype: str | bytes | None,
          flags: int = 0, data: str | bytes | None = None) -> None:
    """mount(2). Raises OSError naming the target."""
    ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    kind = os.fsdecode(fstype) if fstype else "bind"
    _check(ret, f"mount {kind} on", os.fsdecode(target))


def umount2(target: str | bytes, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), "umount", os.fsdecode(target))


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (no glibc wrapper: raw syscall)."""
    ret = _libc.syscall(_NR_PIVOT_ROOT, _b(new_root), _b(put_old))
    _check(ret, "pivot_root", new_root)


def sethostname(name: str) -> None:
    """sethostname(2) (the socket module has the wrapper)."""
    socket.sethostname(name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2)."""
    ret = _libc.prctl(option, arg2, arg3, arg4, arg5)
    _check(ret, "prctl")
    return int(ret)


def set_pdeathsig(sig: int) -> None:
    """Ask the kernel to send `sig` to this process when the thread that forked it dies."""
    prctl(PR_SET_PDEATHSIG, sig)


# struct ifreq { char ifr_name[16]; short ifr_flags; ... } — 40 bytes on 64-bit.
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """Bring `lo` up in the current network namespace (what `ip link set lo up` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        res = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req)
        flags = struct.unpack("16sH22x", res)[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)


def setns(fd: int, nstype: int) -> None:
    """setns(2); os.setns where Python has it (3.12+)."""
    fn = getattr(os, "setns", None)
    if fn is not None:
        fn(fd, nstype)
        return
    _check(_libc.setns(fd, nstype), "setns")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def set_capabilities(caps: int) -> None:
    """capset(2): effective = permitted = `caps` (a bit mask), inheritable = none."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        word = (caps >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = word
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def set_name(name: str) -> None:
    """Set this process's comm (what ps shows), at most 15 bytes."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    prctl(PR_SET_NAME, ctypes.addressof(buf))
