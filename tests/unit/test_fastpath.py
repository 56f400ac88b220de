"""The warm-rebuild fast path answers exactly the builds the full CLI would run."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_pybuild


def test_fastpath_knows_every_subcommand() -> None:
    from builder.cli.app import _COMMAND
    from builder.cli.fastpath import COMMANDS

    assert set(_COMMAND.commands) <= COMMANDS  # type: ignore[attr-defined]


def test_a_subcommand_named_like_a_built_directory_still_runs_the_command(
        tmp_path: Path) -> None:
    """`pybuild images` lists images even when ./images is a context built before (the full
    CLI reads the first word as the command; the fast path must not answer a build)."""
    ctx = tmp_path / "images"
    ctx.mkdir()
    (ctx / "f.txt").write_text("f\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f.txt /f.txt\n")
    root = str(tmp_path / "root")
    built = run_pybuild("--root", root, "build", "-q", "-t", "named:1", "images", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    listed = run_pybuild("--root", root, "images", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "named" in listed.stdout and built.stdout.strip() not in listed.stdout
