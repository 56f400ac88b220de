"""Rootless sandboxes (ladder rungs 2 and 3), run as an unprivileged user these tests create,
over a busybox rootfs that user builds: exit codes, signals, pid 1, network none, users,
whiteouts in the change set, and a host left untouched."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from builder.sandbox import ExecResult, SandboxSpec, changes

pytestmark = pytest.mark.integration

USER = "pybuild-rootless"
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from builder.sandbox import SandboxError, SandboxSpec, detect, run
    from tests.integration.sandbox_rootfs import make_rootfs

    base = Path(sys.argv[1])
    rootfs = make_rootfs(base / "rootfs")
    layer = base / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "gone").write_text("bye")
    (layer / "d").mkdir()
    (layer / "d" / "old").write_text("x")
    (layer / "etc" / "apt" / "apt.conf.d").mkdir(parents=True)
    n = [0]

    def sh(script, **kw):
        n[0] += 1
        up, work = base / f"u{n[0]}", base / f"w{n[0]}"
        up.mkdir(); work.mkdir()
        spec = SandboxSpec(lowers=(str(rootfs), str(layer)), upper=str(up), work=str(work),
                           argv=("/bin/sh", "-c", script), **kw)
        out = []
        try:
            res = run(spec, stdout=out.append, stderr=out.append)
        except SandboxError as exc:
            return {"error": str(exc)}
        return {"code": res.exit_code, "out": b"".join(out).decode(), "upper": str(up),
                "work": str(work), "stubs": list(res.stubs), "lowers": list(spec.lowers),
                "filesystem": res.filesystem}

    def ours():
        return [l for l in open("/proc/self/mountinfo") if str(base) in l]

    def layer_owners(res):
        # The step's layer, written as the default path does (sandbox.changes → writer):
        # {entry: [uid, gid]} as the tar headers record them.
        if "error" in res:
            return res
        import io, tarfile
        from builder.oci.layers import write_layer
        from builder.oci.model import Compression
        from builder.sandbox import ExecResult, changes
        spec = SandboxSpec(lowers=tuple(res["lowers"]), argv=("-",), upper=res["upper"],
                           work=res["work"])
        result = ExecResult(res["code"], stubs=tuple(res["stubs"]),
                            filesystem=res["filesystem"])
        buf = io.BytesIO()
        write_layer(changes(spec, result), buf, Compression.NONE)
        with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
            return {m.name: [m.uid, m.gid] for m in tf}
    report = detect()
    r = {"mode": report.mode.value, "filesystem": report.filesystem.value,
         "exit": sh("exit 5"), "signal": sh("kill -TERM $$"),
         "id": sh("id -u; echo $$; ip -o link | wc -l; ip route | wc -l"),
         "app": sh("id", user="app"),
         "huge": sh("id", user="99999999"),
         "diff": sh("rm /etc/gone; rm -rf /d; mkdir /d; echo n > /d/new; echo a > /added"),
         "chown": sh("echo x > /f; chown 1000:1000 /f && stat -c '%u:%g' /f"),
         "apt": sh("cat /etc/apt/apt.conf.d/zz-pybuild-no-sandbox 2>/dev/null || echo none")}
    r["root_owned"] = layer_owners(sh("echo x > /rootmade"))
    if report.mode.value == "rootless-subid":
        r["user_owned"] = layer_owners(sh("echo x > /tmp/mine; mkdir /tmp/d", user="1000"))
    r["mounts_unchanged"] = ours() == []
    # Signals reach the command even when pid 1 runs as a subordinate id.
    import signal, threading
    from builder.sandbox import start
    up, work = base / "sig-u", base / "sig-w"
    up.mkdir(); work.mkdir()
    ready, lines = threading.Event(), []
    def on_line(line):
        lines.append(line.decode())
        ready.set()
    user = "app" if report.mode.value == "rootless-subid" else "0"
    proc = start(SandboxSpec(lowers=(str(rootfs),), upper=str(up), work=str(work), user=user,
                             argv=("/bin/sh", "-c", 'trap "echo got; exit 7" TERM; echo ready; '
                                   "while :; do sleep 0.05; done")), stdout=on_line)
    threading.Timer(0.1, lambda: ready.wait(10) and proc.signal(signal.SIGTERM)).start()
    r["signalled"] = [proc.wait().exit_code, lines]
    # The sandbox keeps none of the caller's descriptors: a pipe the caller had open at
    # start() (another thread's, another sandbox's status pipe) reaches EOF once the caller
    # closes it, while the step still runs.
    import select
    held_r, held_w = os.pipe()
    up, work = base / "fd-u", base / "fd-w"
    up.mkdir(); work.mkdir()
    started = threading.Event()
    proc = start(SandboxSpec(lowers=(str(rootfs),), upper=str(up), work=str(work),
                             argv=("/bin/sh", "-c", "echo ready; sleep 30")),
                 stdout=lambda line: started.set())
    threading.Thread(target=proc.wait, daemon=True).start()
    started.wait(10)
    os.close(held_w)
    r["caller_fd_released"] = bool(select.select([held_r], [], [], 5)[0])
    proc.kill()
    proc.wait()
    # A timeout kills everything the step started; no process survives.
    marker = f"7{os.getpid()}1"
    timed = sh(f"sleep {marker} & sleep {marker}", timeout=0.5)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read() == f"sleep\\0{marker}\\0".encode():
                survivors.append(pid)
        except OSError:
            pass
    r["timeout"] = [timed.get("code"), survivors]
    # Cleanup of what a sandbox wrote: as root inside, files get ids we cannot touch outside.
    from builder.sandbox import remove_tree
    owned = sh("mkdir -p /srv/a/b && echo x > /srv/a/b/f && chown -R 1000:1000 /srv/a "
               "&& chmod 700 /srv/a/b")
    import shutil
    try:
        shutil.rmtree(owned["upper"])
        r["plain_rmtree"] = "ok"
    except OSError as exc:
        r["plain_rmtree"] = type(exc).__name__
    remove_tree(owned["upper"])
    remove_tree(owned["work"])
    r["removed"] = not os.path.exists(owned["upper"]) and not os.path.exists(owned["work"])
    print(json.dumps(r))
""")


def _setup_user() -> str | None:
    if os.geteuid() != 0:
        return "the tests create an unprivileged user, which needs root"
    if not shutil.which("busybox") or not shutil.which("setpriv"):
        return "busybox or setpriv (util-linux) not installed"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        if not shutil.which("useradd"):
            return "useradd not installed"
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", USER], check=True)
    return None


def _run_as_user(env: dict[str, str]) -> dict:
    """Run SCRIPT as the test user; the change set of the "diff" case is read here, as root
    (the user's interpreter may lack the layer writer's dependencies)."""
    pw = pwd.getpwnam(USER)
    # pytest's tmp_path lives under a 0700 root-only directory: use a directory the user owns.
    base = Path(tempfile.mkdtemp(prefix="pybuild-rootless-"))
    os.chown(base, pw.pw_uid, pw.pw_gid)
    try:
        r = _run_script(base, pw, env)
        d = r["diff"]
        spec = SandboxSpec(lowers=tuple(d["lowers"]), argv=("-",), upper=d["upper"],
                           work=d["work"])
        result = ExecResult(d["code"], stubs=tuple(d["stubs"]), filesystem=d["filesystem"])
        d["changes"] = [[c.path, c.kind.value] for c in changes(spec, result)]
        return r
    finally:
        # Files the subid sandbox created belong to subordinate ids; root can remove them.
        shutil.rmtree(base, ignore_errors=True)


def _run_script(base: Path, pw: pwd.struct_passwd, env: dict[str, str]) -> dict:
    # The user's interpreter cannot see root's site-packages (0700 home): give it a copy of
    # the non-stdlib modules the layer writer imports (pyzstd and what it needs), so the
    # script can write a layer.
    import importlib

    site = base / "site"
    for name in ("pyzstd", "backports.zstd", "typing_extensions"):
        try:
            origin = Path(importlib.import_module(name).__file__ or "")
        except ImportError:
            continue
        dest = site.joinpath(*name.split("."))
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, dest)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, dest.parent / origin.name)
    proc = subprocess.run(
        ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
         sys.executable, "-c", SCRIPT, str(base)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base),
             "PYTHONPATH": f"{ROOT}:{site}", **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _common_checks(r: dict, filesystem: str = "overlayfs-userxattr") -> None:
    assert r["filesystem"] == filesystem
    assert r["diff"]["filesystem"] == filesystem
    assert r["exit"]["code"] == 5
    assert r["signal"]["code"] == 143
    uid, pid, links, routes = r["id"]["out"].split()
    assert (uid, pid, links, routes) == ("0", "2", "1", "0")
    assert r["diff"]["code"] == 0
    assert r["diff"]["changes"] == [["added", "add"], ["d", "opaque"], ["d/new", "add"],
                                    ["etc", "add"], ["etc/gone", "delete"]]
    assert r["diff"]["stubs"]  # /proc, /dev ... were created and are not in the changes
    assert r["mounts_unchanged"]
    assert r["signalled"] == [7, ["ready\n", "got\n"]]
    assert r["caller_fd_released"]
    assert r["timeout"] == [137, []]
    # Files container root wrote belong to the caller on the host; the layer says 0:0.
    assert r["root_owned"]["rootmade"] == [0, 0]


_REASON = _setup_user()


@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
def test_rootless_subid() -> None:
    from builder.sandbox.mode import subid_range

    if not subid_range("subuid", USER, pwd.getpwnam(USER).pw_uid):
        pytest.skip(f"{USER} has no /etc/subuid range (useradd did not allocate one)")
    r = _run_as_user({})
    if r["mode"] != "rootless-subid":
        pytest.skip(f"rootless-subid unavailable for {USER}: detected {r['mode']}")
    _common_checks(r)
    assert r["app"]["out"].startswith("uid=1000(app) gid=1000(app)")
    assert "uid 99999999, outside this rootless sandbox's ids 0-65536" in r["huge"]["error"]
    assert r["plain_rmtree"] == "PermissionError"  # subordinate ids: not ours outside
    assert r["removed"]
    assert r["chown"]["out"].strip() == "1000:1000"
    assert r["apt"]["out"].strip() == "none"  # real ids: apt's sandbox user works
    # USER 1000's files belong to a subordinate id on the host; the layer records 1000.
    owned = r["user_owned"]
    assert owned["tmp/mine"] == owned["tmp/d"] == [1000, 1000], owned
    assert owned["tmp"] == [0, 0]  # the copied-up /tmp keeps its (container) root owner


@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
def test_rootless_single_id() -> None:
    r = _run_as_user({"PYBUILD_SANDBOX_MODE": "rootless-single-id"})
    if r["mode"] != "rootless-single-id":
        pytest.skip(f"rootless-single-id unavailable: detected {r['mode']}")
    _common_checks(r)
    assert r["removed"]
    # Only root exists inside; other users are refused with the fix named.
    assert "usermod --add-subuids" in r["app"]["error"]
    # The seccomp filter fakes chown: it "succeeds" and the file stays root's.
    assert (r["chown"]["code"], r["chown"]["out"].strip()) == (0, "0:0")
    # apt is told not to drop to _apt, by a mounted conf file that is not in the layer.
    assert r["apt"]["out"].strip() == 'APT::Sandbox::User "root";'
    assert r["diff"]["changes"][-1] == ["etc/gone", "delete"]


@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
def test_rootless_copy_fallback() -> None:
    """Rung 4 without fuse: copy the lowers in the user namespace, diff afterwards."""
    r = _run_as_user({"PYBUILD_SANDBOX_FS": "copy"})
    if r["mode"] == "none":
        pytest.skip("no user namespaces")
    _common_checks(r, "copy")
