"""Root-mode sandbox (ladder rung 1) over a busybox rootfs made at test time: process
semantics, isolation, mounts, the change set, and a host left untouched."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from builder.oci.layers import write_layer
from builder.oci.model import Compression
from builder.sandbox import Mount, SandboxError, SandboxSpec, remove_tree, run, start
from builder.snapshot import changes
from tests.integration.sandbox_rootfs import make_rootfs, mounts_mentioning, skip_reason_root

pytestmark = pytest.mark.integration

_REASON = skip_reason_root()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def step(tmp_path: Path, rootfs: Path):
    """Build a spec over the rootfs with a fresh upper/work; returns (spec factory, upper)."""
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()

    def make(*argv: str, **kw) -> SandboxSpec:
        kw.setdefault("lowers", (str(rootfs),))
        return SandboxSpec(argv=argv, upper=str(upper), work=str(work), **kw)

    return make, upper


def sh(make, script: str, **kw) -> tuple[int, str, str]:
    out: list[bytes] = []
    err: list[bytes] = []
    res = run(make("/bin/sh", "-c", script, **kw), stdout=out.append, stderr=err.append)
    return res.exit_code, b"".join(out).decode(), b"".join(err).decode()


def test_exit_codes(step) -> None:
    make, _ = step
    assert run(make("/bin/true")).exit_code == 0
    assert run(make("/bin/false")).exit_code == 1
    assert sh(make, "exit 42")[0] == 42


def test_killed_by_signal_is_128_plus_signal(step) -> None:
    make, _ = step
    res = run(make("/bin/sh", "-c", "kill -TERM $$"))
    assert (res.exit_code, res.signal) == (143, signal.SIGTERM)


def test_command_not_found_is_127(step) -> None:
    make, _ = step
    res = run(make("no-such-command"))
    assert res.exit_code == 127
    assert res.error and "not found in $PATH" in res.error


def test_pid_1_is_our_init_and_reaps_orphans(step) -> None:
    make, _ = step
    # The orphaned `sleep` is re-parented to pid 1, which must reap it: no zombie remains.
    code, out, _ = sh(make, "echo $$; (sleep 0.1 &); sleep 0.6; "
                            "cat /proc/[0-9]*/stat | awk '{print $3}' | sort -u | tr -d '\\n'")
    assert code == 0
    pid, states = out.split()
    assert pid == "2"
    assert "Z" not in states


def test_pid_1_has_no_more_power_than_the_command(step) -> None:
    make, _ = step
    code, out, _ = sh(make, "cat /proc/1/comm; grep -E '^(CapEff|CapBnd)' /proc/1/status")
    assert code == 0
    assert out.split() == ["pybuild-init", "CapEff:", "00000000a80425fb",
                           "CapBnd:", "00000000a80425fb"]


def test_signals_are_forwarded_through_pid_1(step) -> None:
    make, _ = step
    ready = threading.Event()
    lines: list[bytes] = []

    def on_line(line: bytes) -> None:
        lines.append(line)
        if line == b"ready\n":
            ready.set()

    proc = start(make("/bin/sh", "-c", 'trap "echo got-term; exit 7" TERM; echo ready; '
                                        "while :; do sleep 0.05; done"), stdout=on_line)
    waiter = threading.Thread(target=lambda: lines.append(b"rc=%d" % proc.wait().exit_code))
    waiter.start()
    assert ready.wait(10)
    proc.signal(signal.SIGTERM)
    waiter.join(10)
    assert lines[-2:] == [b"got-term\n", b"rc=7"]


def test_network_none_has_loopback_only(step) -> None:
    make, _ = step
    code, out, _ = sh(make, "ip -o link; echo ROUTES; ip route; echo END; "
                            "ping -c1 -W2 127.0.0.1 >/dev/null && echo PING-OK; "
                            "wget -q -T 2 -O- http://1.1.1.1/ 2>&1 || echo NO-NET")
    assert code == 0
    links = [line for line in out.splitlines() if ": " in line and "link/" in line]
    assert len(links) == 1 and "lo:" in links[0] and "UP" in links[0]
    assert "ROUTES\nEND" in out
    assert "PING-OK" in out and "NO-NET" in out


def test_network_host_sees_host_interfaces_and_resolv_conf(step) -> None:
    make, _ = step
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    code, out, _ = sh(make, "ip -o link | wc -l; cat /etc/resolv.conf", network="host")
    assert code == 0
    assert int(out.split()[0]) == len(host_links.splitlines())


def test_hostname_and_hosts(step) -> None:
    make, _ = step
    code, out, _ = sh(make, "hostname; grep -c localhost /etc/hosts; grep box /etc/hosts",
                      hostname="box", extra_hosts=("10.0.0.1 db",))
    assert code == 0
    assert out.splitlines()[0] == "box"
    assert "127.0.1.1\tbox" in out


@pytest.mark.parametrize("user,expected", [
    ("", "uid=0(root) gid=0(root) groups=0(root)"),
    # The kernel keeps the supplementary list sorted.
    ("app", "uid=1000(app) gid=1000(app) groups=10(wheel),29(audio),1000(app)"),
    ("1000:other", "uid=1000(app) gid=2000(other) groups=2000(other)"),
    ("4242", "uid=4242 gid=0(root) groups=0(root)"),
])
def test_user_and_group_resolution(step, user: str, expected: str) -> None:
    make, _ = step
    code, out, _ = sh(make, "id", user=user)
    assert (code, out.strip()) == (0, expected)


def test_home_from_passwd_and_supplementary_extra_groups(step) -> None:
    make, _ = step
    code, out, _ = sh(make, 'echo "$HOME"; id -G', user="app", groups=("other",))
    assert code == 0
    home, gids = out.splitlines()
    assert home == "/home/app"
    assert gids.split() == ["1000", "10", "29", "2000"]


def test_unknown_user_is_a_setup_error(step) -> None:
    make, _ = step
    with pytest.raises(SandboxError, match="unable to find user nobody"):
        run(make("/bin/true", user="nobody"))


def test_env_and_cwd_created_if_missing(step) -> None:
    make, upper = step
    code, out, _ = sh(make, 'pwd; echo "$A|$B"; env | sort | tr "\\n" " "',
                      env=("A=1", "B=two words", "PATH=/bin"), cwd="/work/dir")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "/work/dir"
    assert lines[1] == "1|two words"
    assert (upper / "work" / "dir").is_dir()


def test_stdin_bytes(step) -> None:
    make, _ = step
    out: list[bytes] = []
    res = run(make("/bin/sh", "-c", "tr a-z A-Z"), stdin=b"hello\nworld", stdout=out.append)
    assert res.exit_code == 0
    assert out == [b"HELLO\n", b"WORLD"]


def test_output_to_file_descriptor(step, tmp_path: Path) -> None:
    make, _ = step
    with open(tmp_path / "out", "wb") as f:
        res = run(make("/bin/sh", "-c", "echo to-fd; echo err >&2"), stdout=f.fileno(),
                  stderr=f.fileno())
    assert res.exit_code == 0
    assert (tmp_path / "out").read_bytes() == b"to-fd\nerr\n"


def test_bind_and_tmpfs_mounts(step, tmp_path: Path) -> None:
    make, upper = step
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "in").write_text("from host\n")
    mounts = (Mount("/mnt/ro", "bind", str(ro), readonly=True),
              Mount("/mnt/rw", "bind", str(rw)),
              Mount("/scratch", "tmpfs", options=("size=1m",)))
    code, out, _ = sh(make, "cat /mnt/ro/in; touch /mnt/ro/x 2>/dev/null || echo RO; "
                            "echo data > /mnt/rw/out; echo t > /scratch/t; "
                            "grep ' /scratch ' /proc/self/mountinfo | grep -c tmpfs",
                      mounts=mounts)
    assert code == 0
    assert out.split() == ["from", "host", "RO", "1"]
    assert (rw / "out").read_text() == "data\n"
    assert not (ro / "x").exists()
    # Mount points the sandbox created are not part of the step's changes.
    assert not [c for c in changes(str(upper), stubs=()) if c.path.startswith("scratch/")]


def test_readonly_rootfs(step) -> None:
    make, _ = step
    code, out, _ = sh(make, "touch /x 2>/dev/null || echo RO; echo ok > /tmp/y 2>&1 || echo RO2",
                      readonly_rootfs=True)
    assert out.split()[0] == "RO"


def test_default_capabilities_only(step) -> None:
    make, _ = step
    code, out, _ = sh(make, "grep CapBnd /proc/self/status; mount -t tmpfs t /mnt 2>&1 || "
                            "echo DENIED")
    assert code == 0
    assert "CapBnd:\t00000000a80425fb" in out
    assert "DENIED" in out


def test_proc_sys_dev(step) -> None:
    make, _ = step
    code, out, _ = sh(make, "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && echo NULL; "
                            "head -c 4 /dev/zero | wc -c; touch /sys/x 2>/dev/null || echo SYSRO;"
                            "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo PROCRO;"
                            "test -c /dev/pts/ptmx && echo PTS")
    assert code == 0
    devs = set(out.splitlines()[0].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"} <= devs
    assert out.splitlines()[1:] == ["NULL", "4", "SYSRO", "PROCRO", "PTS"]


def test_umask_is_docker_default_whatever_the_caller_has(step) -> None:
    make, _ = step
    old = os.umask(0o077)
    try:
        code, out, _ = sh(make, "umask; touch /f; stat -c %a /f; stat -c '%a %t,%T' /dev/null")
    finally:
        os.umask(old)
    assert (code, out.split()) == (0, ["0022", "644", "666", "1,3"])


def test_timeout_kills_the_sandbox(step) -> None:
    make, _ = step
    t = time.monotonic()
    res = run(make("/bin/sleep", "30", timeout=0.5))
    assert res.timed_out and res.exit_code == 137
    assert time.monotonic() - t < 10


def test_change_set_whiteouts_opaque_dirs_and_no_stubs(tmp_path: Path, rootfs: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "d").mkdir(parents=True)
    (layer / "d" / "old").write_text("old")
    (layer / "etc").mkdir()
    (layer / "etc" / "gone").write_text("bye")
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    spec = SandboxSpec(lowers=(str(rootfs), str(layer)), upper=str(upper), work=str(work),
                       argv=("/bin/sh", "-c", "rm /etc/gone; rm -rf /d; mkdir /d; "
                                              "echo n > /d/new; echo a > /added"))
    res = run(spec)
    assert res.exit_code == 0
    cs = changes(str(upper), stubs=res.stubs, lowers=spec.lowers)
    assert [(c.path, c.kind.value) for c in cs] == [
        ("added", "add"),
        ("d", "opaque"),
        ("d/new", "add"),
        ("etc", "add"),
        ("etc/gone", "delete"),
    ]
    # ... and the store's layer writer turns it into OCI whiteouts, overlay xattrs stripped.
    buf = io.BytesIO()
    write_layer(cs, buf, Compression.NONE)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert sorted(members) == ["added", "d", "d/.wh..wh..opq", "d/new", "etc", "etc/.wh.gone"]
    assert not any(k.startswith(("trusted.overlay", "user.overlay"))
                   for m in members.values() for k in m.pax_headers)


def test_remove_tree_cleans_upper_and_work(step) -> None:
    make, upper = step
    spec = make("/bin/sh", "-c", "mkdir -p /a/b && chown -R 1000 /a && chmod 0 /a/b")
    assert run(spec).exit_code == 0
    assert spec.work is not None and os.listdir(spec.work)
    remove_tree(str(upper))
    remove_tree(spec.work)
    remove_tree(spec.work)  # idempotent
    assert not upper.exists() and not Path(spec.work).exists()


def test_upper_on_overlayfs_names_the_fix(tmp_path: Path, rootfs: Path) -> None:
    for d in "luwm":
        (tmp_path / d).mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={tmp_path}/l,upperdir={tmp_path}/u,workdir={tmp_path}/w",
                    str(tmp_path / "m")], check=True)
    try:
        (tmp_path / "m" / "up").mkdir()
        (tmp_path / "m" / "wk").mkdir()
        spec = SandboxSpec(lowers=(str(rootfs),), upper=str(tmp_path / "m" / "up"),
                           work=str(tmp_path / "m" / "wk"), argv=("/bin/true",))
        with pytest.raises(SandboxError) as err:
            run(spec)
    finally:
        subprocess.run(["umount", str(tmp_path / "m")], check=True)
    assert err.value.message.startswith("cannot set up the sandbox: mount overlay on /")
    assert err.value.hint and "PYBUILD_SANDBOX_FS" in err.value.hint


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read() == b"sleep\0" + marker.encode() + b"\0":
                        found.append(int(pid))
            except OSError:
                continue
    return found


def test_host_untouched_after_runs_kills_and_timeouts(step) -> None:
    make, upper = step
    assert mounts_mentioning(upper.parent, *make("x").lowers) == []
    marker = f"9{os.getpid()}7"
    run(make("/bin/sh", "-c", f"sleep {marker} & sleep {marker} & exit 0"))
    run(make("/bin/sh", "-c", f"sleep {marker} & sleep 30", timeout=0.3))
    proc = start(make("/bin/sh", "-c", f"sleep {marker} & sleep 30"))
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    assert mounts_mentioning(upper.parent, *make("x").lowers) == []
    assert _processes_with(marker) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_killing_the_caller_kills_the_sandbox(tmp_path: Path, rootfs: Path, sig: int) -> None:
    """SIGKILL the calling process (PR_SET_PDEATHSIG) or interrupt it (KeyboardInterrupt in
    run() kills and reaps the sandbox) and the whole sandbox goes with it."""
    marker = f"8{os.getpid()}3"
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    script = textwrap.dedent(f"""
        import sys
        from builder.sandbox import SandboxSpec, run
        sys.stdout.write("started\\n"); sys.stdout.flush()
        run(SandboxSpec(lowers=({str(rootfs)!r},), upper={str(tmp_path / 'u')!r},
                        work={str(tmp_path / 'w')!r},
                        argv=("/bin/sh", "-c", "sleep {marker} & sleep {marker}")))
    """)
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(root)})
    assert child.stdout and child.stdout.readline() == b"started\n"
    deadline = time.monotonic() + 10
    while len(_processes_with(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_processes_with(marker)) == 2
    child.send_signal(sig)
    assert child.wait(10) != 0
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def test_caller_thread_is_back_in_its_pid_namespace(step) -> None:
    """Root mode enters a new pid namespace for the calling thread's children only, and must
    always return: later subprocesses of this thread are born in the caller's namespace."""
    make, _ = step
    own = os.readlink("/proc/thread-self/ns/pid")
    run(make("/bin/true"))
    run(make("/bin/sleep", "5", timeout=0.2))
    assert os.readlink("/proc/thread-self/ns/pid_for_children") == own
    assert subprocess.run(["true"]).returncode == 0


def test_concurrent_runs_from_threads(tmp_path: Path, rootfs: Path) -> None:
    results: list[int] = []

    def one(i: int) -> None:
        (tmp_path / f"u{i}").mkdir()
        (tmp_path / f"w{i}").mkdir()
        res = run(SandboxSpec(lowers=(str(rootfs),), upper=str(tmp_path / f"u{i}"),
                              work=str(tmp_path / f"w{i}"),
                              argv=("/bin/sh", "-c", f"echo {i} > /out; exit {i}")))
        results.append(res.exit_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(6))
    for i in range(6):
        assert (tmp_path / f"u{i}" / "out").read_text() == f"{i}\n"
