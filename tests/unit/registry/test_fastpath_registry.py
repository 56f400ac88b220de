"""The warm-rebuild fast path never answers a build that must talk to a registry: `--push`
(the push must happen) and `--pull=always` (the base must be fetched again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli.fastpath import try_fast
from tests.conftest import run_pybuild


def test_push_and_pull_always_fall_through_to_the_full_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PYBUILD_NO_FASTPATH", raising=False)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /a.txt\n")
    base = ["--root", str(tmp_path / "root"), "build", "-q", "-t", "127.0.0.1:1/fp:1"]
    first = run_pybuild(*base, str(ctx))
    assert first.returncode == 0, first.stderr
    # the control: the same request is answered from the build record
    assert try_fast([*base, str(ctx)]) == 0
    assert capsys.readouterr().out.strip() == first.stdout.strip()
    for extra in (["--push"], ["--pull=always"], ["--pull", "always"], ["--pull=true"]):
        assert try_fast([*base, *extra, str(ctx)]) is None, extra
