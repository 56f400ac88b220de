"""The parse cache: a hit is the same AST without lark, keyed by text/path/strict and the
parser's own source, misses on anything unreadable or foreign, never caches errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.errors import DockerfileError
from builder.syntax import parse, parsecache, parser

ROOT = Path(__file__).resolve().parents[3]
TEXT = "FROM busybox AS base\nARG X=1\nRUN echo $X \\\n  && true\nCOPY <<EOF /a\nhi\nEOF\n"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "pybuild"


def _entries(where: Path) -> list[Path]:
    return sorted(where.glob("ast-*.pickle"))


def test_hit_equals_a_fresh_parse(cache_home: Path) -> None:
    first = parse(TEXT, "Dockerfile")
    assert len(_entries(cache_home)) == 1
    assert oct(cache_home.stat().st_mode & 0o777) == "0o700"
    again = parsecache.load(TEXT, "Dockerfile", True)
    assert again == first == parser.parse(TEXT, "Dockerfile")
    assert repr(again) == repr(first)


def test_key_covers_path_strict_and_text(cache_home: Path) -> None:
    parse(TEXT, "Dockerfile")
    assert parsecache.load(TEXT, "other/Dockerfile", True) is None
    assert parsecache.load(TEXT, "Dockerfile", False) is None
    assert parsecache.load(TEXT + "\n", "Dockerfile", True) is None
    tree = parse(TEXT, "other/Dockerfile")
    assert tree.instructions[0].span.file == "other/Dockerfile"  # type: ignore[attr-defined]


def test_errors_are_not_cached(cache_home: Path) -> None:
    for _ in range(2):
        with pytest.raises(DockerfileError):
            parse("FROM\n", "Dockerfile")
    assert _entries(cache_home) == []


def test_corrupt_or_foreign_directory_is_a_miss(cache_home: Path) -> None:
    parse(TEXT, "Dockerfile")
    (entry,) = _entries(cache_home)
    entry.write_bytes(b"not a pickle")
    assert parsecache.load(TEXT, "Dockerfile", True) is None
    assert parse(TEXT, "Dockerfile") == parser.parse(TEXT, "Dockerfile")  # rewritten
    assert parsecache.load(TEXT, "Dockerfile", True) is not None
    cache_home.chmod(0o777)  # others could plant entries: not used at all
    assert parsecache.load(TEXT, "Dockerfile", True) is None
    cache_home.chmod(0o700)


def test_entries_are_bounded(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsecache, "MAX_ENTRIES", 4)
    for i in range(6):
        parse(f"FROM busybox\nRUN echo {i}\n", "Dockerfile")
    assert 2 <= len(_entries(cache_home)) <= 4


def test_eviction_keeps_the_entries_in_use(cache_home: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The Dockerfile rebuilt every day must not be evicted by a lint run over many others."""
    monkeypatch.setattr(parsecache, "MAX_ENTRIES", 4)
    parse(TEXT, "Dockerfile")
    (ours,) = _entries(cache_home)
    os.utime(ours, ns=(0, 0))  # the oldest entry by far...
    for i in range(12):
        parse(f"FROM busybox\nRUN echo {i}\n", "Dockerfile")
        assert parsecache.load(TEXT, "Dockerfile", True) is not None, i  # ...but in use


def test_a_hit_does_not_import_lark(tmp_path: Path) -> None:
    code = ("import sys, builder.syntax as s\n"
            f"t = s.parse({TEXT!r}, 'Dockerfile')\n"
            "print('lark' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                           capture_output=True, check=True).stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]
