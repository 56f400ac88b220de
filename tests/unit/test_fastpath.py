"""The warm-rebuild fast path answers exactly the builds the full CLI would run."""

from __future__ import annotations

import re
import time
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


def _imported(module: str, profile: str) -> bool:
    """Whether PYTHONPROFILEIMPORTTIME's report (on stderr) lists `module`."""
    return re.search(rf"\| +{re.escape(module)}$", profile, re.M) is not None


def test_an_untouched_rebuild_is_answered_from_the_stamps(tmp_path: Path) -> None:
    """Nothing touched: answered by the build stamps, before the store or the parser is
    imported, with the build's warnings shown again. A rewrite with the same bytes: answered
    by the record's content check instead. Both give the first build's image."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text("FROM scratch as base\nCOPY a.txt /a.txt\nCMD echo hi\n")
    args = ("--root", str(tmp_path / "root"), "build", "--progress=plain", "-t", "st:1",
            str(ctx))
    first = run_pybuild(*args)
    assert first.returncode == 0, first.stderr
    image_id = first.stdout.strip()
    time.sleep(2.1)  # let the context and images.json settle (buildstamp.SETTLE_NS)
    second = run_pybuild(*args)  # the content check answers, and stamps
    assert second.returncode == 0 and "build record" in second.stderr
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    third = run_pybuild(*args, env=profile)
    assert third.returncode == 0 and third.stdout.strip() == image_id
    assert _imported("builder.buildstamp", third.stderr)
    assert not _imported("builder.store", third.stderr)
    for out in (second.stderr, third.stderr):
        assert "warning FromAsCasing" in out and "warning JSONArgsRecommended" in out
        assert "#1 [base 2/2] COPY a.txt /a.txt\n#1 CACHED" in out
    (ctx / "a.txt").write_text("a\n")
    rewritten = run_pybuild(*args, env=profile)
    assert rewritten.returncode == 0 and rewritten.stdout.strip() == image_id
    assert _imported("builder.store", rewritten.stderr) and "build record" in rewritten.stderr
    retagged = run_pybuild(*args[:-2], "st:2", str(ctx), env=profile)
    assert retagged.returncode == 0 and _imported("builder.store", retagged.stderr)
    assert "naming to docker.io/library/st:2" in retagged.stderr


def test_one_relative_context_in_two_places_gives_two_images(tmp_path: Path) -> None:
    """`pybuild ctx` from two working directories: same request key, different files (of the
    same size); the second must not be answered with the first's image."""
    for place, text in (("one", "aaa"), ("two", "bbb")):
        (tmp_path / place / "ctx").mkdir(parents=True)
        (tmp_path / place / "ctx" / "f.txt").write_text(text)
        (tmp_path / place / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY f.txt /\n")
    root = str(tmp_path / "root")
    one = run_pybuild("--root", root, "-q", "ctx", cwd=tmp_path / "one")
    assert one.returncode == 0, one.stderr
    time.sleep(2.1)
    again = run_pybuild("--root", root, "-q", "ctx", cwd=tmp_path / "one")  # stamps now
    assert again.stdout == one.stdout
    two = run_pybuild("--root", root, "-q", "ctx", cwd=tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert two.stdout.strip() != one.stdout.strip()


def test_cache_flags_are_never_answered_by_the_fast_path(tmp_path: Path) -> None:
    """A warm rebuild with --cache-to must still export, and one with --cache-from must still
    read (and warn about) the cache: the fast path leaves both to the full build."""
    from builder.cli.fastpath import _parse

    assert _parse(["--cache-to", "type=local,dest=d", "ctx"]) is None
    assert _parse(["--cache-from=type=local,src=d", "ctx"]) is None
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("f\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f.txt /f.txt\n")
    root = str(tmp_path / "root")
    first = run_pybuild("--root", root, "build", "-q", str(ctx), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    cache = tmp_path / "cache"
    exported = run_pybuild("--root", root, "build", "-q", "--cache-to",
                           f"type=local,dest={cache}", str(ctx), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == first.stdout and (cache / "index.json").is_file()
    missing = tmp_path / "missing"
    warned = run_pybuild("--root", root, "build", "--progress=plain", "--cache-from",
                         f"type=local,src={missing}", str(ctx), cwd=tmp_path)
    assert warned.returncode == 0, warned.stderr
    assert str(missing) in warned.stderr and "no such directory" in warned.stderr
