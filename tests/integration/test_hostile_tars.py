"""Hostile layers and archives: each is refused, nothing outside the target is touched, and the
store stays consistent (no partial rootfs, no blob that does not match its name)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.layers import apply_layer, apply_layers, store_layer_blob
from builder.oci.layout import load_archive
from builder.oci.model import OCI_LAYER
from builder.store import Store


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"pwned",
          linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, (data if kind == tarfile.REGTYPE else None)


def tar(*entries: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under `root` except `skip`, with its mode and (file) content."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(dirpath, d) != skip]
        for n in dirs + files:
            p = Path(dirpath, n)
            st = os.lstat(p)
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
            out[str(p)] = (st.st_mode, data)
    return out


@pytest.fixture
def arena(tmp_path: Path) -> tuple[Path, Path]:
    """(target, host): the target sits 2 levels deep; `host` holds files an escape would hit."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "passwd").write_text("root:x:0:0\n")
    target = host / "var" / "target"
    target.mkdir(parents=True)
    return target, host


SYM = tarfile.SYMTYPE
LNK = tarfile.LNKTYPE
DIR = tarfile.DIRTYPE

HOSTILE: dict[str, list[bytes]] = {
    "dotdot member": [tar(entry("../../etc/passwd"))],
    "dotdot in the middle": [tar(entry("a/../../../etc/passwd"))],
    "absolute member": [tar(entry("/etc/passwd"))],
    "symlink climbing out, then write through it": [
        tar(entry("out", SYM, linkname="../../etc"), entry("out/passwd"))],
    "symlink chain climbing out": [
        tar(entry("a", SYM, linkname="b"), entry("b", SYM, linkname="../.."),
            entry("a/etc/passwd"))],
    "symlink planted in a lower layer": [
        tar(entry("d", SYM, linkname="../../etc")), tar(entry("d/passwd"))],
    "directory replaced by an escaping symlink": [
        tar(entry("d", DIR)), tar(entry("d", SYM, linkname="../.."), entry("d/etc/passwd"))],
    "hardlink to a dotdot path": [tar(entry("x", LNK, linkname="../../etc/passwd"))],
    "hardlink to an absolute path": [tar(entry("x", LNK, linkname="/etc/passwd"))],
    "hardlink through an escaping symlink": [
        tar(entry("out", SYM, linkname="../../etc"), entry("x", LNK, linkname="out/passwd"))],
    "whiteout climbing out": [tar(entry("../.wh.etc", data=b""))],
    "whiteout through an escaping symlink": [
        tar(entry("out", SYM, linkname="../.."), entry("out/.wh.etc", data=b""))],
    "opaque marker through an escaping symlink": [
        tar(entry("out", SYM, linkname="../../etc"), entry("out/.wh..wh..opq", data=b""))],
    "too many symlink hops": [
        tar(entry("loop", SYM, linkname="loop"), entry("loop/x"))],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layer_is_refused_and_the_host_untouched(arena: tuple[Path, Path], case: str):
    target, host = arena
    before = snapshot(host, target)
    with pytest.raises(ImageError) as err:
        for i, layer in enumerate(HOSTILE[case]):
            apply_layer(io.BytesIO(layer), target, name=f"L{i}")
    assert "layer L" in err.value.message            # names the layer …
    assert "entry" in err.value.message              # … and the entry
    assert snapshot(host, target) == before


def test_absolute_symlinks_are_re_rooted_not_followed_to_the_host(arena: tuple[Path, Path]):
    target, host = arena
    before = snapshot(host, target)
    layer = tar(entry("etc", DIR), entry("abs", SYM, linkname="/etc"), entry("abs/passwd"))
    apply_layer(io.BytesIO(layer), target, name="L0")
    assert (target / "etc" / "passwd").read_bytes() == b"pwned"
    assert snapshot(host, target) == before


def _raw_header(name: bytes, size: int, typeflag: bytes) -> bytes:
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = typeflag
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


@pytest.mark.parametrize("typeflag", [b"x", b"g", b"L"])
def test_giant_extended_headers_are_refused_before_reading(arena: tuple[Path, Path],
                                                           typeflag: bytes):
    target, host = arena
    # Claims an 8 GiB header but is only a few KiB long: must fail fast, not allocate.
    data = _raw_header(b"././@PaxHeader", 8 * 1024**3 - 1, typeflag) + b"\0" * 4096
    with pytest.raises(ImageError, match="extended header"):
        apply_layer(io.BytesIO(data), target, name="giant")
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("cut", [100, 700, 1500])
@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_layers_are_refused(arena: tuple[Path, Path], cut: int, compressed: bool):
    target, _ = arena
    whole = tar(entry("a", data=b"A" * 3000), entry("b", data=b"B" * 10))
    if compressed:
        whole = gzip.compress(whole, mtime=0)
        cut = min(cut, len(whole) - 10)
    with pytest.raises(ImageError, match="layer trunc"):
        apply_layer(io.BytesIO(whole[:cut]), target, name="trunc")


def test_device_node_refused_for_unprivileged_apply(arena: tuple[Path, Path]):
    target, _ = arena
    info, _ = entry("dev/sda", tarfile.BLKTYPE)
    info.devmajor, info.devminor = 8, 0
    with pytest.raises(ImageError, match="device"):
        apply_layer(io.BytesIO(tar((info, None))), target, name="dev", is_root=False)


def test_corrupt_blob_in_store_is_refused_and_nothing_published(tmp_path: Path):
    store = Store(tmp_path / "store")
    layer = tar(entry("etc", DIR), entry("etc/hostname", data=b"box\n"))
    digest = store.put_blob(layer)
    rec = store_layer_blob(store, digest, OCI_LAYER)
    # Flip one byte of the stored blob behind the store's back.
    path = store.blob_path(digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt"):
        with store.new_rootfs("k1") as root:
            apply_layers(store, [rec.diff_id], root)
    assert not store.has_rootfs("k1")
    assert list(store.tmp_root.iterdir()) == []


def test_archive_with_a_blob_that_lies_about_its_digest_is_refused(tmp_path: Path):
    store = Store(tmp_path / "store")
    liar = "0" * 64
    archive = tmp_path / "bad.tar"
    archive.write_bytes(tar(entry("oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}'),
                            entry(f"blobs/sha256/{liar}", data=b"not what it says")))
    with pytest.raises(ImageError, match="digest mismatch"):
        load_archive(store, archive)
    assert not store.has_blob(Digest(liar))
    assert not store.has_blob(Digest(hashlib.sha256(b"not what it says").hexdigest()))
    for d in store.blobs():  # whatever is there verifies
        assert hashlib.sha256(store.blob_path(d).read_bytes()).hexdigest() == d.hex
    assert list(store.tmp_root.iterdir()) == []


@pytest.mark.parametrize("manifest", [b"not json", b"[]", b'{"schemaVersion": 2}',
                                      b'{"schemaVersion":2,"mediaType":"application/'
                                      b'vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'])
def test_layouts_with_malformed_documents_are_refused_cleanly(tmp_path: Path, manifest: bytes):
    store = Store(tmp_path / "store")
    digest = hashlib.sha256(manifest).hexdigest()
    index = ('{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.'
             f'v1+json","digest":"sha256:{digest}","size":{len(manifest)}}}]}}').encode()
    archive = tmp_path / "bad.tar"
    archive.write_bytes(tar(entry("oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}'),
                            entry("index.json", data=index),
                            entry(f"blobs/sha256/{digest}", data=manifest)))
    with pytest.raises(ImageError):
        load_archive(store, archive)
    assert store.images() == {}
    store.prune()  # and GC copes with whatever was left behind


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay lower dirs hold 0:0 devices: root only")
def test_layer_lower_dirs_keep_whiteouts_inside_the_root(tmp_path: Path):
    """Regression: per-layer overlay lower dirs (executor.rootfs.layer_dir) once wrote
    whiteouts with plain path joins, so `evil -> /host/dir` + `evil/.wh.x` planted a device
    node on the host."""
    from builder.executor.rootfs import layer_dir

    host = tmp_path / "host"
    host.mkdir()
    store = Store(tmp_path / "store")
    layer = tar(entry("evil", SYM, linkname=str(host)), entry("evil/.wh.planted", data=b""),
                entry("up", SYM, linkname="../../../../.."), entry("d", DIR),
                entry("d/.wh..wh..opq", data=b""))
    rec = store_layer_blob(store, store.put_blob(layer), OCI_LAYER)
    lower = layer_dir(store, rec.diff_id)
    assert list(host.iterdir()) == []
    assert os.getxattr(lower / "d", "trusted.overlay.opaque") == b"y"
