"""Configuration: .hadolint.yaml keys, pyproject [tool.pybuild.lint], discovery, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import Severity, UsageError
from builder.lint import LintConfig, lint_text
from builder.lint.config import discover, load, read_file


def test_hadolint_yaml_keys(tmp_path: Path) -> None:
    cfg_file = tmp_path / ".hadolint.yaml"
    cfg_file.write_text(
        "ignored: [DL3006]\n"
        "override:\n  error: [DL3003]\n  style: [DL3059]\n"
        "trustedRegistries:\n  - registry.example.com\n"
        "failure-threshold: warning\n"
        "label-schema:\n  owner: text\n  url: url\n"
        "strict-labels: true\nno-fail: true\n")
    cfg = load([cfg_file])
    assert cfg.ignored == {"DL3006"}
    assert cfg.override == {"DL3003": Severity.ERROR, "DL3059": Severity.STYLE}
    assert cfg.trusted_registries == ("registry.example.com",)
    assert cfg.failure_threshold == "warning"
    assert cfg.label_schema == {"owner": "text", "url": "url"}
    assert cfg.strict_labels and cfg.no_fail
    found = {f.code: f for f in lint_text("FROM debian\nRUN cd /x\n", "D", cfg)}
    assert "DL3006" not in found
    assert found["DL3003"].severity is Severity.ERROR
    assert "DL3026" in found  # docker.io is not trusted
    assert "DL3049" in found  # schema label missing


def test_pyproject_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.pybuild.lint]\nignored = ["DL3003"]\n'
        'failure_threshold = "error"\n')
    sub = tmp_path / "docker"
    sub.mkdir()
    paths = discover(sub)
    assert paths == [tmp_path / "pyproject.toml"]
    cfg = load(paths)
    assert cfg.ignored == {"DL3003"} and cfg.failure_threshold == "error"


def test_discovery_prefers_nearest_hadolint_yaml(tmp_path: Path) -> None:
    (tmp_path / ".hadolint.yaml").write_text("ignored: [DL3000]\n")
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    (tmp_path / "a" / ".hadolint.yml").write_text("ignored: [DL3001]\n")
    assert discover(inner) == [tmp_path / "a" / ".hadolint.yml"]


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / ".hadolint.yaml"
    bad.write_text("failure-threshold: sometimes\n")
    with pytest.raises(UsageError, match="failure-threshold"):
        load([bad])
    bad.write_text("ignored: [DL3000\n")
    with pytest.raises(UsageError, match="invalid YAML"):
        read_file(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UsageError, match="mapping"):
        read_file(bad)
    with pytest.raises(UsageError, match="unknown label type"):
        LintConfig().merge({"label-schema": {"x": "colour"}}, "test")
