"""The rootless single-id seccomp filter (ladder rung 3, the Charliecloud idea): system calls
that change ownership or identity, or create device nodes, "succeed" without doing anything.

With only one id mapped, a package manager's chown(2) to `_apt` or setgroups(2) fails with
EINVAL/EPERM and aborts the install; faking success lets it finish, with every file owned by
root in the layer (which is what the image would record for a root-owned build anyway, minus
the owners the package wanted). Charliecloud: lib/seccomp.c (ch-run --seccomp).

A classic BPF program (seccomp(2), linux/filter.h), built by hand: load the audit arch, load
the syscall number, compare against the list; mknod/mknodat only when the mode is a char or
block device (fifos and sockets must still really be created).
"""

from __future__ import annotations

import ctypes
import os
import struct

from builder.sandbox import linux

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_FAKE = 0x00050000  # SECCOMP_RET_ERRNO with errno 0: the call returns 0
_OFF_NR, _OFF_ARCH, _OFF_ARGS = 0, 4, 16
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000

# (audit arch, {name: nr}, {mknod-like name: (nr, index of the mode argument)})
_ARCHES = {
    "x86_64": (0xC000003E,
               {"chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "setuid": 105,
                "setgid": 106, "setreuid": 113, "setregid": 114, "setgroups": 116,
                "setresuid": 117, "setresgid": 119, "setfsuid": 122, "setfsgid": 123},
               {"mknod": (133, 1), "mknodat": (259, 2)}),
    "aarch64": (0xC00000B7,
                {"fchownat": 54, "fchown": 55, "setregid": 143, "setgid": 144,
                 "setreuid": 145, "setuid": 146, "setresuid": 147, "setresgid": 149,
                 "setfsuid": 151, "setfsgid": 152, "setgroups": 159},
                {"mknodat": (33, 2)}),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes:
    """The filter for `machine` (default: this one) as raw sock_filter instructions."""
    arch, calls, mknods = _ARCHES[machine or os.uname().machine]
    prog = [_insn(_LD_W_ABS, 0, 0, _OFF_ARCH),
            _insn(_JEQ_K, 1, 0, arch),
            _insn(_RET_K, 0, 0, _RET_ALLOW),  # another arch (e.g. i386 via int 0x80): allow
            _insn(_LD_W_ABS, 0, 0, _OFF_NR)]
    for nr in calls.values():
        prog += [_insn(_JEQ_K, 0, 1, nr), _insn(_RET_K, 0, 0, _RET_FAKE)]
    for nr, arg in mknods.values():
        # if nr matches: A = low word of the mode argument & S_IFMT; fake for chr/blk.
        prog += [_insn(_JEQ_K, 0, 6, nr),
                 _insn(_LD_W_ABS, 0, 0, _OFF_ARGS + 8 * arg),
                 _insn(_AND_K, 0, 0, S_IFMT),
                 _insn(_JEQ_K, 2, 0, S_IFCHR),
                 _insn(_JEQ_K, 1, 0, S_IFBLK),
                 _insn(_RET_K, 0, 0, _RET_ALLOW),
                 _insn(_RET_K, 0, 0, _RET_FAKE)]
    prog.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Install the filter on the calling thread (inherited by children and across exec).
    Needs CAP_SYS_ADMIN in the current user namespace, which the sandbox's root has."""
    code = program()
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    linux.prctl(linux.PR_SET_SECCOMP, linux.SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


SUPPORTED = os.uname().machine in _ARCHES
