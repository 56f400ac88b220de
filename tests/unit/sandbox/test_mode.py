"""The ladder report: stepping down with PYBUILD_SANDBOX_MODE / PYBUILD_SANDBOX_FS, and the
refusal (rung 5) with a fix, as an exception and through `pybuild info`."""

from __future__ import annotations

import json

import pytest

from builder.sandbox import SandboxSpec, SandboxUnavailable, detect, run
from builder.sandbox.mode import Mode
from tests.conftest import run_pybuild


def test_none_refuses_run_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PYBUILD_SANDBOX_MODE", "none")
    report = detect()
    assert report.mode is Mode.NONE and not report.supported
    with pytest.raises(SandboxUnavailable) as err:
        run(SandboxSpec(lowers=(str(tmp_path),), argv=("/bin/true",)))
    assert err.value.exit_code == 4
    assert "RUN steps are refused" in err.value.message
    assert err.value.hint and "PYBUILD_SANDBOX_MODE" in err.value.hint


def test_info_shows_the_refusal_and_fix() -> None:
    proc = run_pybuild("info", env={"PYBUILD_SANDBOX_MODE": "none"})
    assert proc.returncode == 0, proc.stderr
    assert "RUN steps REFUSED" in proc.stdout
    assert "fix: unset PYBUILD_SANDBOX_MODE" in proc.stdout
    data = json.loads(run_pybuild("info", "--format", "json",
                                  env={"PYBUILD_SANDBOX_MODE": "none"}).stdout)
    assert data["sandbox"]["supported"] is False and data["sandbox"]["fix"]


def test_unknown_values_are_reported_not_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = detect()
    monkeypatch.setenv("PYBUILD_SANDBOX_MODE", "turbo")
    monkeypatch.setenv("PYBUILD_SANDBOX_FS", "zfs")
    report = detect()
    assert report.mode is real.mode and report.filesystem is real.filesystem
    assert "ignored PYBUILD_SANDBOX_MODE='turbo'" in report.reason
    assert "ignored PYBUILD_SANDBOX_FS='zfs'" in report.reason


def test_filesystem_only_steps_down(monkeypatch: pytest.MonkeyPatch) -> None:
    real = detect()
    monkeypatch.setenv("PYBUILD_SANDBOX_FS", "copy")
    if real.mode is Mode.NONE:
        pytest.skip("no sandbox here")
    assert detect().filesystem.value == "copy"
    monkeypatch.setenv("PYBUILD_SANDBOX_FS", "overlayfs")
    if real.filesystem.value != "overlayfs":
        assert detect().filesystem is real.filesystem
