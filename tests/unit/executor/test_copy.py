"""COPY helpers: --chmod parsing, archive detection, and the overlay-lower view."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from builder.executor.copy import archive_kind, parse_chmod
from builder.executor.rootfs import LayerView


@pytest.mark.parametrize(("spec", "before", "is_dir", "after"), [
    ("755", 0o600, False, 0o755),
    ("0640", 0o777, False, 0o640),
    ("u+x", 0o644, False, 0o744),
    ("go-w", 0o666, False, 0o644),
    ("a=r", 0o777, False, 0o444),
    ("u=rwx,g=rx,o=", 0o000, False, 0o750),
    ("a+X", 0o644, True, 0o755),
    ("a+X", 0o644, False, 0o644),
    ("a+X", 0o744, False, 0o755),
    ("u+s", 0o755, False, 0o4755),
    ("+t", 0o777, True, 0o1777),
])
def test_chmod(spec: str, before: int, is_dir: bool, after: int) -> None:
    assert parse_chmod(spec)(before, is_dir) == after


def test_chmod_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_chmod("u+q")


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


def test_archive_kind_by_content(tmp_path: Path) -> None:
    plain = tmp_path / "a.bin"
    plain.write_bytes(_tar_bytes())
    gz = tmp_path / "b.tar.gz"
    gz.write_bytes(gzip.compress(_tar_bytes()))
    notar = tmp_path / "c.gz"
    notar.write_bytes(gzip.compress(b"just text"))
    text = tmp_path / "d.tar"
    text.write_text("not a tar")
    assert archive_kind(str(plain)) == "tar"
    assert archive_kind(str(gz)) == "gzip"
    assert archive_kind(str(notar)) is None
    assert archive_kind(str(text)) is None


def test_layer_view_honours_whiteouts_opaque_and_symlinks(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating overlay whiteouts (char 0:0) and trusted xattrs needs root")
    low, mid, top = tmp_path / "low", tmp_path / "mid", tmp_path / "top"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (low / "etc" / "gone").write_text("x")
    (low / "dir").mkdir()
    (low / "dir" / "old").write_text("x")
    (low / "usr" / "bin").mkdir(parents=True)
    (low / "usr" / "bin" / "tool").write_text("t")
    os.symlink("usr/bin", low / "bin")
    (mid / "etc").mkdir(parents=True)
    os.mknod(mid / "etc" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (mid / "dir").mkdir()
    os.setxattr(mid / "dir", "trusted.overlay.opaque", b"y")
    (mid / "dir" / "new").write_text("n")
    top.mkdir()
    view = LayerView([low, mid, top])
    assert view.read_text("etc/passwd").startswith("root")
    assert view.lookup("etc/gone") is None
    assert view.lookup("dir/old") is None
    assert view.lookup("dir/new") == mid / "dir" / "new"
    assert view.resolve("bin/tool") == "usr/bin/tool"
    assert view.is_dir("bin") and not view.is_dir("etc/passwd")


def test_add_extracts_whiteout_names_as_plain_files(tmp_path: Path) -> None:
    """Docker's ADD extracts an archive as an ordinary tar: a `.wh.` entry is a file named so,
    not an instruction to delete its sibling (whiteouts belong to image layers only)."""
    from builder.executor.copy import Stager

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("keep.txt", b"k"), (".wh.keep.txt", b"w"), (".wh..wh..opq", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    archive = tmp_path / "pkg.tar"
    archive.write_bytes(buf.getvalue())
    lower, staging = tmp_path / "lower", tmp_path / "staging"
    lower.mkdir()
    staging.mkdir()
    stager = Stager(staging, LayerView([lower]))
    dest = stager.ensure_dir("out")
    stager.extract(str(archive), dest, "pkg.tar")
    assert sorted(p.name for p in (staging / "out").iterdir()) == \
        [".wh..wh..opq", ".wh.keep.txt", "keep.txt"]
    assert (staging / "out" / ".wh.keep.txt").read_bytes() == b"w"
    assert (staging / "out" / "keep.txt").read_bytes() == b"k"
