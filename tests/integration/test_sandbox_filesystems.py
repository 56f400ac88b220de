"""Rung 4 of the ladder: without kernel overlayfs the sandbox assembles the rootfs with
fuse-overlayfs or by copying, and every strategy yields the same change set. Forced here
with PYBUILD_SANDBOX_FS on a machine where overlayfs works."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from builder.sandbox import SandboxSpec, changes, detect, run
from tests.integration.sandbox_rootfs import make_rootfs, mounts_mentioning, skip_reason_root

pytestmark = pytest.mark.integration

_REASON = skip_reason_root()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

SCRIPT = ("cat /d/old; rm /etc/gone; rm -rf /d; mkdir /d; echo n > /d/new; echo a > /added; "
          "chmod 600 /etc/passwd; mkdir -p /usr/local/bin; ln -s /bin/busybox /usr/local/bin/x")
EXPECTED = [("added", "add"), ("d", "opaque"), ("d/new", "add"), ("etc", "add"),
            ("etc/gone", "delete"), ("etc/passwd", "add"), ("usr", "add"), ("usr/local", "add"),
            ("usr/local/bin", "add"), ("usr/local/bin/x", "add")]


@pytest.fixture(scope="module")
def lowers(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    base = tmp_path_factory.mktemp("fs")
    rootfs = make_rootfs(base / "rootfs")
    layer = base / "layer"
    (layer / "d").mkdir(parents=True)
    (layer / "d" / "old").write_text("old\n")
    (layer / "etc").mkdir()
    (layer / "etc" / "gone").write_text("bye")
    return str(rootfs), str(layer)


def _force(monkeypatch: pytest.MonkeyPatch, fs: str) -> None:
    if fs == "fuse-overlayfs" and (not shutil.which("fuse-overlayfs")
                                   or not os.access("/dev/fuse", os.R_OK | os.W_OK)):
        pytest.skip("fuse-overlayfs or /dev/fuse unavailable")
    monkeypatch.setenv("PYBUILD_SANDBOX_FS", fs)
    assert detect().filesystem.value == fs, detect().reason


@pytest.mark.parametrize("fs", ["overlayfs", "fuse-overlayfs", "copy"])
def test_every_strategy_gives_the_same_change_set(fs: str, lowers, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, fs)
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    spec = SandboxSpec(lowers=lowers, upper=str(tmp_path / "u"), work=str(tmp_path / "w"),
                       argv=("/bin/sh", "-c", SCRIPT), timeout=30)
    assert mounts_mentioning(tmp_path, *lowers) == []
    out: list[bytes] = []
    res = run(spec, stdout=out.append, stderr=out.append)
    assert (res.exit_code, b"".join(out), res.filesystem) == (0, b"old\n", fs)
    assert [(c.path, c.kind.value) for c in changes(spec, res)] == EXPECTED
    assert mounts_mentioning(tmp_path, *lowers) == []
    # The lowers are untouched whatever the strategy.
    assert (Path(lowers[1]) / "d" / "old").read_text() == "old\n"
    assert (Path(lowers[1]) / "etc" / "gone").exists()


@pytest.mark.parametrize("fs", ["fuse-overlayfs", "copy"])
def test_user_and_exit_status_in_fallback_strategies(fs: str, lowers, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, fs)
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    spec = SandboxSpec(lowers=lowers, upper=str(tmp_path / "u"), work=str(tmp_path / "w"),
                       argv=("/bin/sh", "-c", "id -u; exit 9"), user="app")
    out: list[bytes] = []
    res = run(spec, stdout=out.append)
    assert (res.exit_code, out) == (9, [b"1000\n"])
    assert changes(spec, res) == ()


def test_no_fuse_daemon_survives(lowers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, "fuse-overlayfs")
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    spec = SandboxSpec(lowers=lowers, upper=str(tmp_path / "u"), work=str(tmp_path / "w"),
                       argv=("/bin/sleep", "30"), timeout=0.5)
    assert run(spec).timed_out
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert str(tmp_path).encode() not in cmd, cmd
