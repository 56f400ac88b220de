"""Overlay upperdir → ChangeSet: whiteouts, opaque dirs, xattr stripping, stub removal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.oci.layers import ChangeKind
from builder.sandbox import SandboxError
from builder.snapshot import changes, container_ids


def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mknod of a 0:0 whiteout and trusted.* xattrs")


def test_plain_files_dirs_and_symlinks_are_adds_sorted(tmp_path: Path) -> None:
    up = tmp_path / "up"
    (up / "b" / "c").mkdir(parents=True)
    (up / "b" / "c" / "f").write_text("x")
    (up / "a").write_text("y")
    (up / "b-x").symlink_to("a")
    cs = changes(str(up))
    assert [(c.path, c.kind) for c in cs] == [
        ("a", "add"), ("b", "add"), ("b-x", "add"), ("b/c", "add"), ("b/c/f", "add")]
    assert cs[0].source == str(up / "a")


def test_an_unreadable_directory_is_an_error_not_a_smaller_layer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rootless, a mode-700 directory owned by a subordinate id cannot be listed by the caller;
    # root bypasses the permission, so the refusal is simulated where os.walk lists it.
    up = tmp_path / "up"
    (up / "srv" / "secret").mkdir(parents=True)
    (up / "srv" / "secret" / "f").write_text("x")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path).endswith("secret"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(SandboxError, match="cannot read the step's changes: Permission denied"):
        changes(str(up))


def test_whiteout_device_is_a_deletion(tmp_path: Path) -> None:
    _root_only()
    up = tmp_path / "up"
    (up / "etc").mkdir(parents=True)
    os.mknod(up / "etc" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    cs = {c.path: c for c in changes(str(up))}
    assert cs["etc/gone"].kind is ChangeKind.DELETE and cs["etc/gone"].source is None
    assert cs["etc"].kind is ChangeKind.ADD


def test_a_real_char_device_is_not_a_whiteout(tmp_path: Path) -> None:
    _root_only()
    up = tmp_path / "up"
    up.mkdir()
    os.mknod(up / "null", 0o666 | 0o020000, os.makedev(1, 3))
    assert changes(str(up))[0].kind is ChangeKind.ADD


@pytest.mark.parametrize("name", ["trusted.overlay.opaque", "user.overlay.opaque"])
def test_opaque_dir(tmp_path: Path, name: str) -> None:
    _root_only()
    up = tmp_path / "up"
    (up / "d").mkdir(parents=True)
    try:
        os.setxattr(up / "d", name, b"y")
        os.setxattr(up / "d", "user.keep", b"1")
        os.setxattr(up / "d", "trusted.overlay.origin", b"junk")
    except OSError as exc:
        pytest.skip(f"filesystem of {tmp_path} lacks xattrs: {exc}")
    (c,) = changes(str(up))
    assert c.kind is ChangeKind.OPAQUE and c.source == str(up / "d")


def test_opaque_other_value_is_not_opaque(tmp_path: Path) -> None:
    _root_only()
    up = tmp_path / "up"
    (up / "d").mkdir(parents=True)
    os.setxattr(up / "d", "trusted.overlay.opaque", b"x")
    assert changes(str(up))[0].kind is ChangeKind.ADD


def test_stubs_are_dropped_with_their_copy_up_parents(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    up = tmp_path / "up"
    (up / "etc").mkdir(parents=True)
    os.chmod(up / "etc", os.stat(lower / "etc").st_mode & 0o7777)
    (up / "etc" / "hosts").write_text("")
    (up / "proc").mkdir()
    (up / "mnt" / "data").mkdir(parents=True)
    (up / "mnt" / "kept").write_text("real change")
    (up / "new").write_text("n")
    cs = changes(str(up), stubs=("proc", "etc/hosts", "mnt", "mnt/data"), lowers=(str(lower),))
    assert [c.path for c in cs] == ["mnt", "mnt/kept", "new"]


def test_stub_that_the_step_filled_is_kept(tmp_path: Path) -> None:
    up = tmp_path / "up"
    (up / "etc").mkdir(parents=True)
    (up / "etc" / "hosts").write_text("written by the step")
    cs = changes(str(up), stubs=("etc", "etc/hosts"))
    assert [c.path for c in cs] == ["etc", "etc/hosts"]


def test_parent_with_changed_mode_is_kept(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    os.chmod(lower / "etc", 0o755)
    up = tmp_path / "up"
    (up / "etc").mkdir(parents=True)
    os.chmod(up / "etc", 0o700)
    (up / "etc" / "hosts").write_text("")
    cs = changes(str(up), stubs=("etc/hosts",), lowers=(str(lower),))
    assert [c.path for c in cs] == ["etc"]


def test_container_ids_map_rootless_host_ids_back() -> None:
    umap = ((0, 1001, 1), (1, 100000, 65536))
    st = os.stat_result((0o100644, 0, 0, 1, 100999, 1001, 0, 0, 0, 0))
    assert container_ids(st, umap, umap) == (1000, 0)
    st = os.stat_result((0o100644, 0, 0, 1, 5, 5, 0, 0, 0, 0))
    assert container_ids(st, umap, umap) == (65534, 65534)
    assert container_ids(st, (), ()) == (5, 5)


def test_fuse_overlayfs_wh_files_mean_the_same(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "d").mkdir(parents=True)
    up = tmp_path / "up"
    (up / "d").mkdir(parents=True)
    (up / "d" / ".wh..wh..opq").write_text("")
    (up / "d" / "new").write_text("n")
    (up / "new-dir").mkdir()
    (up / "new-dir" / ".wh..wh..opq").write_text("")
    (up / ".wh.gone").write_text("")
    cs = changes(str(up), lowers=(str(lower),))
    assert [(c.path, c.kind.value) for c in cs] == [
        ("d", "opaque"), ("d/new", "add"), ("gone", "delete"), ("new-dir", "add")]


def _tree(root: Path) -> None:
    (root / "keep" / "sub").mkdir(parents=True)
    (root / "keep" / "sub" / "f").write_text("f")
    (root / "gone" / "deep").mkdir(parents=True)
    (root / "gone" / "deep" / "x").write_text("x")
    (root / "re").mkdir()
    (root / "re" / "old").write_text("o")
    (root / "mod").write_text("1")


def test_tree_diff_against_the_baseline(tmp_path: Path) -> None:
    import shutil

    from builder.sandbox.tree import baseline, diff, to_overlay_upper

    tree = tmp_path / "tree"
    _tree(tree)
    base = baseline(str(tree))
    assert diff(str(tree), base) == []
    shutil.rmtree(tree / "gone")
    shutil.rmtree(tree / "re")
    (tree / "re").mkdir()
    (tree / "re" / "new").write_text("n")
    (tree / "mod").write_text("2")
    (tree / "added").write_text("a")
    assert sorted(diff(str(tree), base)) == [
        ("added", "add"), ("gone", "delete"), ("mod", "add"), ("re", "opaque"),
        ("re/new", "add")]
    if os.geteuid() != 0:
        return  # the conversion creates 0:0 whiteouts and trusted.* xattrs
    # ... and converted into an overlay upper, the snapshot reads the same change set.
    to_overlay_upper(str(tree), base, "trusted.overlay.opaque")
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")) == [
        "added", "gone", "mod", "re", "re/new"]
    cs = changes(str(tree))
    assert [(c.path, c.kind.value) for c in cs] == [
        ("added", "add"), ("gone", "delete"), ("mod", "add"), ("re", "opaque"),
        ("re/new", "add")]


def test_tree_diff_metadata_only_change_keeps_parents(tmp_path: Path) -> None:
    from builder.sandbox.tree import baseline, diff, to_overlay_upper

    tree = tmp_path / "tree"
    _tree(tree)
    base = baseline(str(tree))
    os.chmod(tree / "keep" / "sub" / "f", 0o600)
    assert diff(str(tree), base) == [("keep/sub/f", "add")]
    to_overlay_upper(str(tree), base, "user.overlay.opaque")
    assert [c.path for c in changes(str(tree))] == ["keep", "keep/sub", "keep/sub/f"]


def test_checkout_applies_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    _root_only()
    from builder.sandbox.tree import checkout

    low, top = tmp_path / "low", tmp_path / "top"
    (low / "d").mkdir(parents=True)
    (low / "d" / "hidden").write_text("h")
    (low / "w").write_text("w")
    (low / "link").symlink_to("w")
    os.chmod(low / "w", 0o640)
    (top / "d").mkdir(parents=True)
    os.setxattr(top / "d", "trusted.overlay.opaque", b"y")
    (top / "d" / "shown").write_text("s")
    os.mknod(top / "w", 0o600 | 0o020000, os.makedev(0, 0))
    dest = tmp_path / "dest"
    dest.mkdir()
    checkout((str(low), str(top)), str(dest))
    assert sorted(os.listdir(dest)) == ["d", "link"]
    assert os.listdir(dest / "d") == ["shown"]
    assert os.readlink(dest / "link") == "w"
    assert "trusted.overlay.opaque" not in os.listxattr(dest / "d")


def test_changes_carry_the_id_mapping_and_identity_carries_none(tmp_path: Path) -> None:
    from builder.oci.layers import IdMapping

    up = tmp_path / "up"
    (up / "d").mkdir(parents=True)
    (up / "d" / "f").write_text("x")
    m = IdMapping.of(((0, 1001, 1), (1, 100000, 65536)), ((0, 1001, 1),))
    assert {c.id_map for c in changes(str(up), id_map=m)} == {m}
    assert {c.id_map for c in changes(str(up), id_map=IdMapping())} == {None}


def test_changes_default_to_this_process_sandbox_mapping(tmp_path: Path) -> None:
    from builder.sandbox import id_maps
    from builder.snapshot import sandbox_id_mapping

    up = tmp_path / "up"
    up.mkdir()
    (up / "f").write_text("x")
    expected = sandbox_id_mapping()
    assert expected.uids == tuple((m.inside, m.outside, m.count) for m in id_maps()[0])
    (c,) = changes(str(up))
    assert c.id_map == (None if expected.identity else expected)
