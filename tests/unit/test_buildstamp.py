"""Build stamps (builder.buildstamp) and the context paths that feed them (builder.context):
an answer stands exactly while nothing the build read changed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder import buildstamp
from builder.context import BuildContext


@pytest.fixture
def settle_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files the test just wrote count as settled."""
    monkeypatch.setattr(buildstamp, "SETTLE_NS", 0)


def _tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.c").write_text("int main;")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("obj")
    (root / "README.md").write_text("readme")
    os.symlink("src", root / "code")


def _save(store: Path, ctx: BuildContext, answer: dict[str, object] | None = None) -> None:
    data = buildstamp.encode(ctx.root, answer or {"config": "sha256:c"}, ctx.stamps)
    assert data is not None
    path = Path(buildstamp.file_path(store, "k1"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _stamped(tmp_path: Path, excludes: tuple[str, ...] = (),
             answer: dict[str, object] | None = None) -> tuple[Path, Path]:
    """(context dir, store) after stamping a whole-context selection as request "k1"."""
    ctx_dir, store = tmp_path / "ctx", tmp_path / "store"
    ctx_dir.mkdir()
    _tree(ctx_dir)
    ctx = BuildContext(ctx_dir, excludes)
    ctx.select(())
    _save(store, ctx, answer)
    return ctx_dir, store


def test_selection_stamps_what_it_read_and_nothing_excluded(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext(tmp_path, ["build"])
    ctx.select(("code/main.c", "README.md"))
    assert str(tmp_path / "code") in ctx.stamps          # the symlink followed
    assert str(tmp_path / "src" / "main.c") in ctx.stamps  # what it led to
    assert str(tmp_path / "README.md") in ctx.stamps
    assert str(tmp_path / "build" / "out.o") not in ctx.stamps
    whole = BuildContext(tmp_path, ["build"])
    whole.select(())
    assert str(tmp_path) in whole.stamps                  # the listed root directory
    assert str(tmp_path / "build") not in whole.stamps    # excluded whole: never read


@pytest.mark.usefixtures("settle_now")
def test_an_answer_stands_until_a_read_path_changes(tmp_path: Path) -> None:
    ctx_dir, store = _stamped(tmp_path, ("build",), {"config": "sha256:c", "names": ("a",)})
    assert buildstamp.check(store, "k1", ctx_dir) == {"config": "sha256:c", "names": ("a",)}
    (ctx_dir / "build" / "out.o").write_text("excluded: not read")
    assert buildstamp.check(store, "k1", ctx_dir) is not None
    time.sleep(0.01)
    (ctx_dir / "src" / "main.c").write_text("int MAIN")   # same size, new content
    assert buildstamp.check(store, "k1", ctx_dir) is None


@pytest.mark.usefixtures("settle_now")
@pytest.mark.parametrize("change", ["add", "remove", "chmod", "retarget"])
def test_every_kind_of_change_is_seen(tmp_path: Path, change: str) -> None:
    ctx_dir, store = _stamped(tmp_path)
    time.sleep(0.01)
    if change == "add":
        (ctx_dir / "src" / "new.c").write_text("")
    elif change == "remove":
        (ctx_dir / "README.md").unlink()
    elif change == "chmod":
        os.chmod(ctx_dir / "README.md", 0o600)
    else:
        (ctx_dir / "code").unlink()
        os.symlink("build", ctx_dir / "code")
    assert buildstamp.check(store, "k1", ctx_dir) is None


@pytest.mark.usefixtures("settle_now")
def test_the_answer_belongs_to_one_context_directory(tmp_path: Path) -> None:
    """The request key leaves out where the context lies: the stamps must not."""
    ctx_dir, store = _stamped(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    assert buildstamp.check(store, "k1", other) is None
    assert buildstamp.check(store, "k1", ctx_dir) is not None


@pytest.mark.usefixtures("settle_now")
def test_content_stamps_see_a_rewrite_in_the_same_tick(tmp_path: Path) -> None:
    store = tmp_path / "store"
    images = tmp_path / "images.json"
    images.write_text('{"images":{"a":"sha256:1"}}')
    data = buildstamp.encode(tmp_path, {}, {str(images): buildstamp.content_stamp(str(images))})
    Path(buildstamp.file_path(store, "k1")).parent.mkdir(parents=True)
    Path(buildstamp.file_path(store, "k1")).write_bytes(data or b"")
    assert buildstamp.check(store, "k1", tmp_path) == {}
    images.write_text('{"images":{"a":"sha256:2"}}')  # same size, maybe the same mtime
    assert buildstamp.check(store, "k1", tmp_path) is None


def test_unsettled_stamps_are_not_written(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("just now")
    ctx = BuildContext(tmp_path)
    ctx.select(())
    assert buildstamp.encode(tmp_path, {}, ctx.stamps) is None
    later = time.time_ns() + buildstamp.SETTLE_NS + 1
    assert buildstamp.encode(tmp_path, {}, ctx.stamps, now_ns=later) is not None


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xe3\x00\x00\x00"])
def test_a_damaged_stamp_file_is_no_answer(tmp_path: Path, content: bytes) -> None:
    path = Path(buildstamp.file_path(tmp_path, "k1"))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert buildstamp.check(tmp_path, "k1", tmp_path) is None


@pytest.mark.parametrize("stamps", [5, [5], [(5, None)], [("a", None, 1)]])
def test_a_stamp_file_of_the_wrong_shape_is_no_answer(tmp_path: Path, stamps: object) -> None:
    import marshal

    path = Path(buildstamp.file_path(tmp_path, "k1"))
    path.parent.mkdir(parents=True)
    path.write_bytes(marshal.dumps((buildstamp.FORMAT, os.path.abspath(tmp_path),
                                    {"config": "sha256:c"}, stamps)))
    assert buildstamp.check(tmp_path, "k1", tmp_path) is None


@pytest.mark.usefixtures("settle_now")
def test_a_stamp_file_another_user_owns_or_may_write_is_not_loaded(tmp_path: Path) -> None:
    """marshal must never read bytes someone else could have made."""
    ctx_dir, store = _stamped(tmp_path)
    path = Path(buildstamp.file_path(store, "k1"))
    assert buildstamp.check(store, "k1", ctx_dir) == {"config": "sha256:c"}
    os.chmod(path, 0o666)
    assert buildstamp.check(store, "k1", ctx_dir) is None
    os.chmod(path, 0o600)
    assert buildstamp.check(store, "k1", ctx_dir) is not None
    if os.geteuid() != 0:
        pytest.skip("giving the file to another user needs root")
    os.chown(path, 65534, 65534)
    assert buildstamp.check(store, "k1", ctx_dir) is None
