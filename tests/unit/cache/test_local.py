"""The type=local backend: untrusted reads (no FIFO, symlink or oversized document is
opened), atomic tag swaps and garbage collection that never touches what is still named."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from pathlib import Path

import pytest

from builder.cache.format import CacheDamaged
from builder.cache.local import LocalLayout
from builder.digest import Digest
from builder.oci.model import OCI_MANIFEST, Descriptor


def _blob(layout: LocalLayout, data: bytes, media: str = "application/octet-stream"
          ) -> Descriptor:
    desc = Descriptor(media, Digest.of_bytes(data), len(data))
    layout.put_blob(desc, lambda: io.BytesIO(data))
    return desc


def _manifest(layout: LocalLayout, *blobs: Descriptor) -> Descriptor:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blobs[0].to_json(),
           "layers": [b.to_json() for b in blobs[1:]]}
    return _blob(layout, json.dumps(doc).encode(), OCI_MANIFEST)


def test_tags_resolve_and_stale_blobs_are_collected(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    with layout.locked():
        a, b = _blob(layout, b"a"), _blob(layout, b"b")
        m1 = _manifest(layout, a, b)
        layout.set_tag("one", m1)
        c = _blob(layout, b"c")
        m2 = _manifest(layout, a, c)
        layout.set_tag("two", m2)
    assert layout.resolve("one").digest == m1.digest
    assert layout.resolve("two").digest == m2.digest
    with layout.locked():
        m3 = _manifest(layout, c)
        layout.set_tag("one", m3)  # b and m1 are named by nothing now
    names = set(os.listdir(layout.blob_dir))
    assert names == {d.digest.hex for d in (a, c, m2, m3)}
    assert oct(os.stat(tmp_path / "c" / "index.json").st_mode & 0o777) == "0o644"
    with pytest.raises(CacheDamaged, match="no cache tagged 'three'"):
        layout.resolve("three")


def test_foreign_index_entries_disable_collection(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    with layout.locked():
        junk = _blob(layout, b"not a manifest")
        layout.set_tag("foreign", junk)
        a = _blob(layout, b"a")
        layout.set_tag("ours", _manifest(layout, a))
        orphan = _blob(layout, b"orphan")
        layout.set_tag("ours", _manifest(layout, a))
    assert (layout.blob_dir / orphan.digest.hex).exists()


def test_a_failed_blob_write_leaves_no_file(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    desc = Descriptor("x", Digest.of_bytes(b"right"), 5)
    with layout.locked(), pytest.raises(CacheDamaged, match="does not match"):
        layout.put_blob(desc, lambda: io.BytesIO(b"wrong"))
    assert os.listdir(layout.blob_dir) == []


def test_reads_never_follow_symlinks_or_block_on_fifos(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    layout.blob_dir.mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("s")
    desc = Descriptor("x", Digest.of_bytes(b"s"), 1)
    (layout.blob_dir / desc.digest.hex).symlink_to(secret)
    with pytest.raises(CacheDamaged, match="a symlink"):
        layout.read_blob(desc)
    fifo = Descriptor("x", Digest.of_bytes(b"f"), 1)
    os.mkfifo(layout.blob_dir / fifo.digest.hex)
    done = threading.Event()

    def read() -> None:
        with pytest.raises(CacheDamaged, match="not a regular file"):
            layout.read_blob(fifo)
        done.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    assert done.is_set()


def test_a_blob_that_is_not_what_it_claims_is_refused(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    layout.blob_dir.mkdir(parents=True)
    desc = Descriptor("x", Digest.of_bytes(b"good"), 4)
    (layout.blob_dir / desc.digest.hex).write_bytes(b"evil")
    with pytest.raises(CacheDamaged, match="does not match"):
        layout.read_blob(desc)
    assert not layout.has_blob(desc)  # so an export would replace it


def test_an_oversized_index_is_refused(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    layout.root.mkdir()
    (layout.root / "index.json").write_bytes(b" " * (17 << 20))
    with pytest.raises(CacheDamaged, match="too large"):
        layout.resolve("latest")


def test_export_refuses_a_blob_directory_that_is_a_symlink(tmp_path: Path) -> None:
    """A restored cache directory whose blobs/sha256 points elsewhere (say, at a store's
    blob directory) must not be written into, nor have its 64-hex files collected."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / ("ab" * 32)
    victim.write_bytes(b"someone else's blob")
    (tmp_path / "c" / "blobs").mkdir(parents=True)
    (tmp_path / "c" / "blobs" / "sha256").symlink_to(elsewhere)
    layout = LocalLayout(tmp_path / "c")
    with pytest.raises(CacheDamaged, match="symlink"), layout.locked():
        a = _blob(layout, b"a")
        layout.set_tag("t", _manifest(layout, a))
    assert victim.read_bytes() == b"someone else's blob"
    assert sorted(os.listdir(elsewhere)) == [victim.name]


@pytest.mark.parametrize("name", ["index.json", "oci-layout"])
def test_export_does_not_block_on_a_fifo(tmp_path: Path, name: str) -> None:
    layout = LocalLayout(tmp_path / "c")
    layout.blob_dir.mkdir(parents=True)
    os.mkfifo(tmp_path / "c" / name)
    done = threading.Event()

    def export() -> None:
        with layout.locked():
            layout.set_tag("t", _manifest(layout, _blob(layout, b"a")))
        done.set()

    t = threading.Thread(target=export, daemon=True)
    t.start()
    t.join(10)
    finished = done.is_set()
    for _ in range(3):      # unblock a stuck reader (each time it opens) so the thread ends
        if not t.is_alive():
            break
        with contextlib.suppress(OSError):
            os.close(os.open(tmp_path / "c" / name, os.O_WRONLY | os.O_NONBLOCK))
        t.join(2)
    assert finished, f"export blocked reading the FIFO {name}"
    assert layout.resolve("t").size > 0


def test_a_deeply_nested_index_is_damaged_not_a_crash(tmp_path: Path) -> None:
    layout = LocalLayout(tmp_path / "c")
    layout.blob_dir.mkdir(parents=True)
    (tmp_path / "c" / "index.json").write_bytes(b"[" * 100_000)
    with pytest.raises(CacheDamaged, match="nested too deeply"):
        layout.resolve("latest")
