"""Our sandbox against the reference runtime: the same SandboxSpec run by real runc (its
config.json written from the spec by builder.sandbox.ociconfig) must give the same
observable results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.sandbox import Mount, SandboxSpec, run
from tests.integration.sandbox_rootfs import make_rootfs, runc_run, skip_reason_root

pytestmark = pytest.mark.integration

_REASON = skip_reason_root() or (None if shutil.which("runc") else "runc not installed")
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

# Each script prints things both runtimes must agree on.
CASES = {
    "exit-code": dict(argv=("/bin/sh", "-c", "exit 7")),
    # Not `kill $$` at top level: under runc the command IS pid 1 and ignores SIGKILL from
    # inside; under our sandbox pid 1 is the init, the command is pid 2 (as `docker --init`).
    "signal": dict(argv=("/bin/sh", "-c", 'sh -c "kill -KILL \\$\\$"; echo $?; '
                                          'sh -c "kill -TERM \\$\\$"; echo $?')),
    "identity": dict(argv=("/bin/sh", "-c", "id; echo $HOME; hostname"), user="app",
                     hostname="twin"),
    "group-override": dict(argv=("/bin/sh", "-c", "id"), user="app:other",
                           groups=("audio",)),
    "unknown-uid": dict(argv=("/bin/sh", "-c", "id; echo $HOME"), user="4242:4243"),
    "env-cwd": dict(argv=("/bin/sh", "-c", "pwd; env | sort"), cwd="/",
                    env=("PATH=/bin", "A=1", "B=x y")),
    "caps": dict(argv=("/bin/sh", "-c",
                       "cat /proc/self/status | grep -E '^(Cap|NoNewPrivs|Seccomp:)'")),
    "network-none": dict(argv=("/bin/sh", "-c", "ip -o link | cut -d' ' -f2; ip route; "
                                                "cat /etc/hosts | grep -c localhost")),
    "dev": dict(argv=("/bin/sh", "-c", "ls /dev/null /dev/zero /dev/full /dev/random "
                                       "/dev/urandom /dev/tty /dev/pts/ptmx /dev/shm; "
                                       "stat -c '%a %F' /dev/shm /dev/null")),
    "mounts-ro": dict(argv=("/bin/sh", "-c", "touch /sys/x /proc/sys/x /x 2>&1 | sed 's/.*: //'"),
                      readonly_rootfs=True),
    "proc-masked": dict(argv=("/bin/sh", "-c", "wc -c < /proc/kcore; cat /proc/keys | wc -l")),
    "umask": dict(argv=("/bin/sh", "-c", "umask; touch /tmp/x; mkdir /tmp/y; "
                                         "stat -c '%a %u' /tmp/x /tmp/y /dev/null /dev/tty")),
    "stdout-stderr": dict(argv=("/bin/sh", "-c", "echo out; echo err >&2; exit 3")),
}


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs(tmp_path_factory.mktemp("busybox-runc") / "rootfs")


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_results_as_runc(name: str, rootfs: Path, tmp_path: Path) -> None:
    kw = dict(CASES[name])
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    spec = SandboxSpec(lowers=(str(rootfs),), upper=str(tmp_path / "u"), work=str(tmp_path / "w"),
                       **kw)
    out: list[bytes] = []
    err: list[bytes] = []
    ours = run(spec, stdout=out.append, stderr=err.append)
    code, rout, rerr = runc_run(spec, tmp_path / "bundle", rootfs)
    assert (ours.exit_code, b"".join(out).decode(), b"".join(err).decode()) == \
        (code, rout.decode(), rerr.decode())


def test_bind_mounts_same_as_runc(rootfs: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("shared\n")
    for d in ("u", "w"):
        (tmp_path / d).mkdir()
    spec = SandboxSpec(lowers=(str(rootfs),), upper=str(tmp_path / "u"), work=str(tmp_path / "w"),
                       argv=("/bin/sh", "-c", "cat /m/f; touch /m/g 2>&1 | sed 's/.*: //'; "
                                              "echo x > /t/x && cat /t/x"),
                       mounts=(Mount("/m", "bind", str(src), readonly=True),
                               Mount("/t", "tmpfs", options=("size=1m",))))
    out: list[bytes] = []
    ours = run(spec, stdout=out.append, stderr=out.append)
    code, rout, rerr = runc_run(spec, tmp_path / "bundle", rootfs)
    assert (ours.exit_code, b"".join(out)) == (code, rout + rerr)
