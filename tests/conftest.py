"""Shared test fixtures: where the project and the shared conformance corpus are."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
# ../shared beside the checkout; a git worktree one level deeper (/work/wt/<name>) finds it
# one level further up.
SHARED = next((p / "shared" for p in (ROOT.parent, ROOT.parent.parent)
               if (p / "shared" / "conformance").is_dir()), ROOT.parent / "shared")
CONFORMANCE = SHARED / "conformance"


@pytest.fixture(scope="session")
def conformance() -> Path:
    """The shared conformance corpus, read in place; skips (with the reason) when absent."""
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance corpus not found at {CONFORMANCE}")
    return CONFORMANCE


def run_pybuild(*args: str, input: str | None = None, env: dict[str, str] | None = None,
                cwd: str | Path | None = None, timeout: float = 300):
    """Run the real CLI (`python -m builder`) from this checkout in a subprocess.

    Returns the CompletedProcess (text mode, stdout and stderr captured)."""
    import os
    import subprocess
    import sys

    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "builder", *args], input=input, text=True,
                          capture_output=True, env=full_env, cwd=cwd, timeout=timeout)
