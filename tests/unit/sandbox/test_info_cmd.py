"""`pybuild info` reports the detected sandbox mode and why (text and JSON)."""

from __future__ import annotations

import json

from builder.sandbox import detect
from tests.conftest import run_pybuild


def test_info_json_matches_detect() -> None:
    proc = run_pybuild("info", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    report = detect()
    assert data["sandbox"]["mode"] == report.mode.value
    assert data["sandbox"]["filesystem"] == report.filesystem.value
    assert data["sandbox"]["reason"] == report.reason
    assert [c["name"] for c in data["sandbox"]["checks"]] == [c.name for c in report.checks]


def test_info_text_names_the_mode_and_the_reason() -> None:
    proc = run_pybuild("info")
    assert proc.returncode == 0, proc.stderr
    report = detect()
    assert f"sandbox mode: {report.mode.value}" in proc.stdout
    assert report.reason in proc.stdout


def test_info_rejects_unknown_format() -> None:
    proc = run_pybuild("info", "--format", "yaml")
    assert proc.returncode == 2
    assert "unknown --format" in proc.stderr
