"""The single-id seccomp filter: identity and ownership calls and device mknod are faked,
everything else (fifos, regular files, reads) really happens."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest

from builder.sandbox import linux, seccomp

pytestmark = pytest.mark.skipif(not seccomp.SUPPORTED,
                                reason=f"no syscall table for {os.uname().machine}")


def test_program_is_whole_instructions_ending_in_allow() -> None:
    prog = seccomp.program("x86_64")
    assert len(prog) % 8 == 0
    assert prog[-8:] == struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)  # BPF_RET ALLOW
    assert len(seccomp.program("aarch64")) % 8 == 0


def _in_child(fn) -> tuple[int, str]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)  # lets any user install a filter
            seccomp.install()
            os.write(w, fn().encode())
        except BaseException as exc:  # noqa: BLE001
            os.write(w, repr(exc).encode())
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_faked_calls_succeed_without_effect(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    before = os.stat(target)

    def probe() -> str:
        os.chown(target, 4321, 4321)
        os.lchown(target, 4321, 4321)
        os.setgroups([4321])
        os.setgid(4321)
        os.setuid(4321)
        os.mknod(tmp_path / "blk", 0o600 | stat.S_IFBLK, os.makedev(8, 0))
        os.mknod(tmp_path / "chr", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        os.mkfifo(tmp_path / "fifo")
        return f"{os.getuid()} {os.getgid()}"

    code, out = _in_child(probe)
    assert code == 0, out
    assert out == f"{os.getuid()} {os.getgid()}"  # identity unchanged
    after = os.stat(target)
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert not (tmp_path / "blk").exists() and not (tmp_path / "chr").exists()
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
