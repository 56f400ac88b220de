"""`pybuild build --check`: BuildKit's build checks only, no build; exit 1 on findings."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_pybuild


def test_check_reports_buildkit_rules_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox AS Base\nRUN true\n")
    proc = run_pybuild("--root", str(tmp_path / "store"), "--check", str(tmp_path))
    assert proc.returncode == 1
    assert "StageNameCasing" in proc.stderr and "Dockerfile:1:1" in proc.stderr
    assert "DL" not in proc.stderr  # hadolint rules are for `pybuild lint`, not build checks


def test_check_clean_dockerfile_exits_0(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox AS base\nRUN true\n")
    proc = run_pybuild("--root", str(tmp_path / "store"), "build", "--check", str(tmp_path))
    assert proc.returncode == 0 and "no warnings found" in proc.stderr


def test_check_invalid_dockerfile_exits_3(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("RUN true\n")
    proc = run_pybuild("--root", str(tmp_path / "store"), "--check", str(tmp_path))
    assert proc.returncode == 3
