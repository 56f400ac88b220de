"""The `pybuild-lint` hook in a real git repository with real `pre-commit` (PyPI):
`pre-commit try-repo <this checkout> pybuild-lint` fails on a bad Dockerfile and passes on a
good one, and only Dockerfile/Containerfile names are handed to it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

BAD = "FROM debian\nRUN apt-get update && apt-get install -y curl\nMAINTAINER me\n"
GOOD = ('FROM debian:12.5\nRUN apt-get update \\\n'
        ' && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5 \\\n'
        ' && rm -rf /var/lib/apt/lists/*\nUSER 10001\nCMD ["curl", "--version"]\n')


def _hook() -> dict:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return next(h for h in hooks if h["id"] == "pybuild-lint")


def test_hook_definition() -> None:
    hook = _hook()
    assert hook["language"] == "python"
    assert hook["entry"].split()[:2] == ["pybuild", "lint"]
    files = re.compile(hook["files"])
    for name in ("Dockerfile", "Containerfile", "sub/Dockerfile", "Dockerfile.dev",
                 "Dockerfile-prod", "app.dockerfile", "x/y.containerfile", "api.Dockerfile",
                 "web.Containerfile"):
        assert files.search(name), name
    for name in ("README.md", "notDockerfile", "docker-compose.yml", "Dockerfiles/readme.txt"):
        assert not files.search(name), name


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"})


def _try_repo(repo: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(["pre-commit", "try-repo", str(ROOT), "pybuild-lint", "--files",
                           *files], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=900)


def test_try_repo_fails_on_bad_and_passes_on_good(tmp_path: Path) -> None:
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed (pip install pre-commit; it is in the test "
                    "extra)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not (ROOT / ".git").exists():
        pytest.skip("the checkout is not a git repository; try-repo needs one")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "Dockerfile").write_text(BAD)
    (repo / "Containerfile").write_text(GOOD)
    (repo / "README.md").write_text("FROM debian\n")  # not a Dockerfile name: never linted
    _git(repo, "add", ".")
    home = tmp_path / "pre-commit-home"

    bad = _try_repo(repo, home, "Dockerfile", "README.md")
    out = bad.stdout + bad.stderr
    if bad.returncode != 0 and "pybuild-lint" not in out and "Failed" not in out:
        pytest.skip(f"pre-commit could not install the hook environment: {out[-800:]}")
    assert bad.returncode == 1, out
    assert "Failed" in out and "DL3006" in out and "DL4000" in out, out
    assert "README.md" not in out.split("pybuild lint")[-1], out

    good = _try_repo(repo, home, "Containerfile", "README.md")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout, good.stdout
