"""The store: atomic, verified blobs; records; locks; GC; crash safety; concurrent processes."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.image import commit_image, get_image
from builder.oci.layers import changes_from_tree, commit_layer
from builder.oci.model import Compression, History, ImageConfig
from builder.store import CacheRecord, Store, default_root, resolve_root

ROOT = Path(__file__).resolve().parents[3]


def test_default_root_rules():
    assert default_root({"PYBUILD_ROOT": "/x"}, euid=1000) == "/x"
    assert default_root({}, euid=0) == "/var/lib/pybuild"
    assert default_root({"XDG_DATA_HOME": "/d"}, euid=1000) == "/d/pybuild"
    assert default_root({"HOME": "/h"}, euid=1000) == "/h/.local/share/pybuild"
    assert resolve_root("/opt/s", {"PYBUILD_ROOT": "/x"}) == "/opt/s"


def test_blobs_are_content_addressed_idempotent_and_verified(tmp_path: Path):
    store = Store(tmp_path)
    d = store.put_blob(b"hello")
    assert d == Digest(hashlib.sha256(b"hello").hexdigest())
    assert store.put_blob(b"hello") == d
    assert store.read_blob(d) == b"hello"
    with pytest.raises(ImageError, match="mismatch"):
        store.put_blob(b"hello", expected=Digest("0" * 64))
    with pytest.raises(ImageError, match="mismatch"):
        store.put_blob_stream(io.BytesIO(b"abc"), expected=Digest("1" * 64))
    assert list(store.tmp_root.iterdir()) == []
    store.blob_path(d).write_bytes(b"HELLO")          # corrupted behind our back
    with pytest.raises(ImageError, match="corrupt"):
        store.read_blob(d)
    with pytest.raises(ImageError, match="not in the store"):
        store.read_blob(Digest("2" * 64))


def test_declared_size_is_enforced(tmp_path: Path):
    store = Store(tmp_path)
    with pytest.raises(ImageError, match="size"):
        store.put_blob_stream(io.BytesIO(b"abcdef"), expected_size=3)
    assert list(store.tmp_root.iterdir()) == []


def test_image_and_cache_records(tmp_path: Path):
    store = Store(tmp_path)
    m = store.put_blob(b"{}")
    store.set_image("docker.io/library/a:1", m)
    assert store.get_image("docker.io/library/a:1") == m
    assert store.images() == {"docker.io/library/a:1": m}
    assert store.remove_image("docker.io/library/a:1")
    assert not store.remove_image("docker.io/library/a:1")
    with pytest.raises(ImageError):
        store.set_image("x:1", Digest("3" * 64))
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("f")
    layer = commit_layer(store, changes_from_tree(src))
    rec = CacheRecord("abc123", layer.diff_id, {"env": ["A=1"]}, "2024-01-01T00:00:00Z")
    store.put_cache(rec)
    assert store.get_cache("abc123") == rec
    assert store.get_cache("nope") is None
    with pytest.raises(ValueError):
        store.put_cache(CacheRecord("../x", None))


def _image(store: Store, tmp_path: Path, content: str) -> Digest:
    src = tmp_path / f"src-{content}"
    src.mkdir()
    (src / "file").write_text(content)
    layer = commit_layer(store, changes_from_tree(src))
    cfg = ImageConfig(diff_ids=(layer.diff_id,), history=(History(created_by=content),))
    return commit_image(store, cfg, [layer.best_for_reading()]).digest


def test_prune_keeps_what_images_and_cache_reach(tmp_path: Path):
    store = Store(tmp_path / "s")
    kept = _image(store, tmp_path, "kept")
    cached = _image(store, tmp_path, "cached")
    dropped = _image(store, tmp_path, "dropped")
    store.set_image("docker.io/library/kept:latest", kept)
    cached_layer = get_image(store, cached).config.diff_ids[0]
    store.put_cache(CacheRecord("k", cached_layer))
    with store.new_rootfs("checkout") as r:
        (r / "x").write_text("x")
    report = store.prune()
    assert report.rootfs == 1 and not store.has_rootfs("checkout")
    assert store.has_blob(kept) and get_image(store, kept)
    assert store.get_cache("k") is not None            # its layer survived
    assert not store.has_blob(dropped) and not store.has_blob(cached)
    assert report.blobs >= 4 and report.layer_records == 1
    # --cache drops cache records, and then their layers
    report = store.prune(cache=True)
    assert report.cache_records == 1 and store.get_cache("k") is None
    assert get_image(store, kept)


def test_prune_waits_for_in_flight_builds(tmp_path: Path):
    store = Store(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from builder.store import Store
        with Store({str(tmp_path)!r}).in_use():
            print("held", flush=True)
            time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ImageError, match="busy"):
            store.prune(blocking=False)
    finally:
        holder.kill()
        holder.wait()
    assert store.prune(blocking=False).blobs == 0


_WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from builder.store import Store
    store = Store(sys.argv[2])
    with store.blob_writer() as w:
        w.write(b"x" * (1 << 20))
        print("writing", flush=True)
        time.sleep(60)
        w.write(b"y")
        w.commit()
""")


def test_writer_killed_mid_blob_leaves_no_visible_blob_and_next_run_succeeds(tmp_path: Path):
    store = Store(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(ROOT), str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(store.blobs()) == []                    # nothing partial is visible
    assert len(list(store.tmp_root.iterdir())) == 1     # just invisible debris
    d = store.put_blob(b"x" * (1 << 20) + b"y")         # the next run succeeds
    assert store.read_blob(d)[-1:] == b"y"
    assert store.prune().temp == 1                      # and prune sweeps the debris
    assert list(store.tmp_root.iterdir()) == []


_RACER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from builder.store import Store
    store = Store(sys.argv[2])
    me = sys.argv[3]
    for i in range(60):
        d = store.put_blob(b"shared-%d" % (i % 7) * 5000)
        store.set_image(f"docker.io/library/img{me}:{i}", d)
        store.set_image("docker.io/library/common:latest", d)
""")


def test_two_processes_sharing_a_store_never_corrupt_it(tmp_path: Path):
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(ROOT), str(tmp_path), str(n)])
             for n in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = Store(tmp_path)
    images = store.images()
    assert len(images) == 2 * 60 + 1                    # no lost update of images.json
    for d in store.blobs():
        assert hashlib.sha256(store.blob_path(d).read_bytes()).hexdigest() == d.hex
    assert len(list(store.blobs())) == 7
    assert list(store.tmp_root.iterdir()) == []


def test_new_rootfs_publishes_atomically_or_not_at_all(tmp_path: Path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.new_rootfs("k") as r:
        (r / "half").write_text("x")
        raise RuntimeError("boom")
    assert not store.has_rootfs("k")
    with store.new_rootfs("k") as r:
        (r / "full").write_text("x")
    assert (store.rootfs_path("k") / "full").exists()
    with store.new_rootfs("k") as r:                   # a racing second checkout loses quietly
        (r / "other").write_text("x")
    assert not (store.rootfs_path("k") / "other").exists()
    assert list(store.tmp_root.iterdir()) == []


def test_stat_memo_invalidates_on_any_stamp_change(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("builder.buildstamp.SETTLE_NS", 0)
    store = Store(tmp_path / "s")
    f = tmp_path / "f"
    f.write_text("a")
    with store.stat_memo() as memo:
        memo.put(str(f), os.stat(f), "fp1")
    with store.stat_memo() as memo:
        assert memo.get(str(f), os.stat(f)) == "fp1"
        time.sleep(0.01)
        f.write_text("b")
        assert memo.get(str(f), os.stat(f)) is None


def test_stat_memo_skips_files_changed_within_the_settle_time(tmp_path: Path):
    """A file written in the same timestamp tick as it was hashed could be written again
    without changing its stamp: it is re-read next time rather than remembered."""
    store = Store(tmp_path / "s")
    f = tmp_path / "f"
    f.write_text("a")
    with store.stat_memo() as memo:
        memo.put(str(f), os.stat(f), "fp1")
    with store.stat_memo() as memo:
        assert memo.get(str(f), os.stat(f)) is None


def test_checkout_is_keyed_by_chain_id_and_made_once(tmp_path: Path):
    from builder.oci.image import chain_id, checkout

    store = Store(tmp_path / "s")
    img = get_image(store, _image(store, tmp_path, "hello"))
    path = checkout(store, img.config.diff_ids)
    assert (path / "file").read_text() == "hello"
    assert path.name == chain_id(img.config.diff_ids).hex == img.config.diff_ids[0].hex
    (path / "marker").write_text("same dir")
    assert (checkout(store, img.config.diff_ids) / "marker").exists()
    d1, d2 = Digest("1" * 64), Digest("2" * 64)
    assert chain_id([d1, d2]) == Digest.of_bytes(f"{d1} {d2}".encode())
    assert checkout(store, []).name == "empty"


def test_stored_layers_and_images_are_identical_across_stores(tmp_path: Path):
    from builder.oci.image import import_rootfs

    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(bytes(range(256)) * 5000)
    digests = []
    for n in range(2):
        store = Store(tmp_path / f"s{n}")
        desc = import_rootfs(store, src, source_date_epoch=1_700_000_000)
        digests.append(desc.digest)
        rec = store.get_layer(get_image(store, desc.digest).config.diff_ids[0])
        assert rec is not None and list(rec.variants) == [Compression.ZSTD]
    assert digests[0] == digests[1]                     # manifest → same blob digests too


def test_lookup_prefers_names_then_ids(tmp_path: Path):
    from builder.oci.image import lookup

    store = Store(tmp_path / "s")
    a, b = _image(store, tmp_path, "a"), _image(store, tmp_path, "b")
    store.set_image("docker.io/library/b:latest", b)
    b_id = get_image(store, b).id.hex
    prefix = b_id[:12]
    assert lookup(store, prefix) == ("docker.io/library/b:latest", b)      # by ID prefix
    store.set_image(f"docker.io/library/{prefix}:latest", a)               # a name that looks
    assert lookup(store, prefix) == (f"docker.io/library/{prefix}:latest", a)  # like an ID
    assert lookup(store, f"sha256:{b_id}")[1] == b
    with pytest.raises(ImageError, match="no such image: nope:latest"):
        lookup(store, "nope")
