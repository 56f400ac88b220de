"""Build-context selection and fingerprints (builder.context)."""

from __future__ import annotations

import os
from pathlib import Path

from builder.context import BuildContext
from builder.executor.cachekey import context_key
from builder.store import Store


def _tree(root: Path) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.c").write_text("int main;")
    (root / "src" / "pkg" / "a.h").write_text("a")
    (root / "README.md").write_text("readme")
    (root / "notes.txt").write_text("n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("obj")
    (root / "build" / "keep.txt").write_text("keep")
    os.symlink("src/main.c", root / "link")


def _key(ctx: BuildContext, includes: tuple[str, ...], memo=None) -> str:
    return context_key("s", ctx.fingerprint(includes, memo))


def test_selection_applies_dockerignore_with_reinclusion(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext(tmp_path, ["build", "!build/keep.txt", "*.txt"])
    paths = [e.path for e in ctx.select(())]
    assert "build/out.o" not in paths and "notes.txt" not in paths
    assert "build/keep.txt" in paths and "src/pkg/a.h" in paths and "link" in paths


def test_wildcard_and_directory_includes(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext(tmp_path)
    assert [e.path for e in ctx.expand("src/*.c")] == ["src/main.c"]
    assert [e.path for e in ctx.select(("src",))] == ["src", "src/main.c", "src/pkg",
                                                        "src/pkg/a.h"]
    assert ctx.expand("missing") == [] and ctx.expand("nope/*.c") == []


def test_fingerprint_ignores_mtime_but_not_content_or_mode(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext(tmp_path)
    k = _key(ctx, ("src",))
    os.utime(tmp_path / "src" / "main.c", (1, 1))
    assert _key(ctx, ("src",)) == k
    assert _key(ctx, ("README.md",)) != k
    (tmp_path / "README.md").write_text("changed")  # outside the selection
    assert _key(ctx, ("src",)) == k
    os.chmod(tmp_path / "src" / "main.c", 0o755)
    k2 = _key(ctx, ("src",))
    assert k2 != k
    (tmp_path / "src" / "main.c").write_text("int main2;")
    assert _key(ctx, ("src",)) != k2


def test_fresh_copy_elsewhere_has_the_same_key(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a)
    _tree(b)
    os.utime(b / "README.md", (12345, 12345))
    assert _key(BuildContext(a, ["build"]), ()) == _key(BuildContext(b, ["build"]), ())


def test_ignored_change_keeps_the_key(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext(tmp_path, ["build"])
    k = _key(ctx, ())
    (tmp_path / "build" / "out.o").write_text("different")
    assert _key(ctx, ()) == k


def test_stat_memo_skips_rereading_and_notices_changes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("builder.buildstamp.SETTLE_NS", 0)  # files just written count
    ctx_dir = tmp_path / "ctx"
    ctx_dir.mkdir()
    _tree(ctx_dir)
    store = Store(tmp_path / "store")
    with store.stat_memo() as memo:
        k = _key(BuildContext(ctx_dir), (), memo)
        memo.commit()
        host = str(ctx_dir / "README.md")
        assert memo.get(host, os.lstat(host)) is not None
        (ctx_dir / "README.md").write_text("other!")  # same size class, new stamp
        assert memo.get(host, os.lstat(host)) is None
        assert _key(BuildContext(ctx_dir), (), memo) != k


def test_a_symlink_source_is_fingerprinted_by_what_it_points_to(tmp_path: Path) -> None:
    """`COPY link /x` copies the link's target: editing the target must change the key (else
    the stale COPY is reused), and the entry keeps the name it was written as."""
    _tree(tmp_path)
    ctx = BuildContext(tmp_path)
    (entry,) = ctx.expand("link")
    assert entry.path == "link" and entry.host == str(tmp_path / "src" / "main.c")
    before = _key(ctx, ("link",))
    (tmp_path / "src" / "main.c").write_text("int main2;")
    assert _key(ctx, ("link",)) != before
    os.symlink("src", tmp_path / "srclink")
    assert [e.path for e in ctx.select(("srclink",))] == \
        ["srclink", "srclink/main.c", "srclink/pkg", "srclink/pkg/a.h"]


def test_symlinks_never_lead_outside_the_context(tmp_path: Path) -> None:
    """Absolute targets are re-rooted at the context and `..` stops at its root (BuildKit's
    FollowLinks): a hostile context cannot make a COPY read host files."""
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    root = tmp_path / "ctx"
    (root / "d").mkdir(parents=True)
    os.symlink(str(outside), root / "abs")
    os.symlink("../secret.txt", root / "rel")
    os.symlink(str(tmp_path), root / "d" / "up")
    os.symlink("loop", root / "loop")
    ctx = BuildContext(root)
    for src in ("abs", "rel", "d/up/secret.txt", "ab*", "d/*/secret.txt", "../secret.txt",
                "loop"):
        assert ctx.expand(src) == [], src
    (root / "secret.txt").write_text("inside")
    assert [e.host for e in ctx.expand("abs")] == []  # re-rooted: <ctx>/<tmp>/secret.txt
    assert [e.host for e in ctx.expand("rel")] == [str(root / "secret.txt")]


def test_memo_is_keyed_by_absolute_paths(tmp_path: Path, monkeypatch) -> None:
    """The stat memo is shared by every build of the store: a context given relative to the
    working directory must not key its files as `ctx/x` (another directory's `ctx/x`
    would share the entry, and the stamp has no device number)."""
    for where in ("a", "b"):
        (tmp_path / where / "ctx").mkdir(parents=True)
        (tmp_path / where / "ctx" / "f.txt").write_text(where)
    store = Store(tmp_path / "store")
    keys = []
    for where in ("a", "b"):
        monkeypatch.chdir(tmp_path / where)
        ctx = BuildContext("ctx")
        assert all(os.path.isabs(e.host) for e in ctx.select(("f.txt",)))
        with store.stat_memo() as memo:
            keys.append(_key(ctx, ("f.txt",), memo))
    assert keys[0] != keys[1]
