"""Layer writer and applier: determinism, tar format rules, whiteouts, metadata round trip."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
import pyzstd

from builder.errors import ImageError
from builder.oci.layers import (
    Change,
    ChangeKind,
    apply_layer,
    changes_from_tree,
    changes_from_upperdir,
    write_layer,
)
from builder.oci.model import Compression

IS_ROOT = os.geteuid() == 0


def make_tree(root: Path, mtime: int = 1_700_000_000) -> Path:
    """A small tree with every entry kind the writer must handle."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 300)
    os.chmod(root / "bin" / "tool", 0o4755)               # setuid must survive
    os.link(root / "bin" / "tool", root / "bin" / "tool-link")
    os.symlink("tool", root / "bin" / "sym")
    os.symlink("/etc/passwd", root / "abs-sym")
    (root / "empty").mkdir()
    (root / "zz-big").write_bytes(random.Random(7).randbytes(3 << 20))  # > one block
    (root / "ünïcode name").write_text("x")
    (root / ("a" * 120)).write_text("long name")              # needs a PAX path record
    os.setxattr(root / "bin" / "tool", "user.note", b"\xff\x00binary")
    if IS_ROOT:
        os.chown(root / "etc" / "passwd", 12, 34)
        os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    for dirpath, dirs, files in os.walk(root, topdown=False):
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (mtime, mtime), follow_symlinks=False)
    return root


def layer_bytes(root: Path, comp: Compression, **kw: object) -> tuple[bytes, object]:
    buf = io.BytesIO()
    res = write_layer(changes_from_tree(root), buf, comp, **kw)  # type: ignore[arg-type]
    return buf.getvalue(), res


def untar(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getmembers()


def plain(data: bytes, comp: Compression) -> bytes:
    if comp is Compression.GZIP:
        return gzip.decompress(data)
    if comp is Compression.ZSTD:
        return pyzstd.decompress(data)
    return data


@pytest.mark.parametrize("comp", list(Compression))
def test_same_changes_give_identical_bytes_in_other_dirs_at_other_times(tmp_path: Path,
                                                                         comp: Compression):
    a = make_tree(tmp_path / "one")
    first, r1 = layer_bytes(a, comp, source_date_epoch=1_600_000_000)
    time.sleep(1.1)
    b = make_tree(tmp_path / "two" / "nested")
    second, r2 = layer_bytes(b, comp, source_date_epoch=1_600_000_000, threads=1)
    assert first == second
    assert r1 == r2
    assert r1.digest.hex == hashlib.sha256(first).hexdigest()             # type: ignore[attr-defined]
    assert r1.diff_id.hex == hashlib.sha256(plain(first, comp)).hexdigest()  # type: ignore[attr-defined]
    assert r1.size == len(first)                                            # type: ignore[attr-defined]


def test_gzip_output_is_a_valid_fixed_header_gzip(tmp_path: Path):
    data, _ = layer_bytes(make_tree(tmp_path / "t"), Compression.GZIP)
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0
    assert subprocess.run(["gzip", "-t"], input=data).returncode == 0
    assert gzip.decompress(data)[-1024:] == b"\0" * 1024


def test_entries_sorted_pax_empty_names_and_clamped_mtimes(tmp_path: Path):
    root = make_tree(tmp_path / "t")
    data, _ = layer_bytes(root, Compression.NONE, source_date_epoch=1_000)
    members = untar(data)
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.encode())
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert all(m.mtime == 1_000 for m in members)
    assert "a" * 120 in names and "ünïcode name" in names
    # Without SOURCE_DATE_EPOCH the file mtimes are kept.
    members = untar(layer_bytes(root, Compression.NONE)[0])
    assert {m.mtime for m in members} == {1_700_000_000}


def test_hardlinks_xattrs_modes_and_symlinks_are_recorded(tmp_path: Path):
    members = {m.name: m for m in untar(layer_bytes(make_tree(tmp_path / "t"),
                                                    Compression.NONE)[0])}
    tool, link = members["bin/tool"], members["bin/tool-link"]
    assert tool.isreg() and tool.mode == 0o4755
    assert link.islnk() and link.linkname == "bin/tool"
    assert members["bin/sym"].issym() and members["bin/sym"].linkname == "tool"
    assert members["empty"].isdir()
    xattr = tool.pax_headers["SCHILY.xattr.user.note"]
    assert xattr.encode("utf-8", "surrogateescape") == b"\xff\x00binary"
    if IS_ROOT:
        assert (members["etc/passwd"].uid, members["etc/passwd"].gid) == (12, 34)
        assert members["null"].ischr() and members["null"].devminor == 3


def test_whiteouts_and_opaque_markers(tmp_path: Path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "new").write_text("n")
    changes = [Change("gone", ChangeKind.DELETE), Change("x/y/gone", ChangeKind.DELETE),
               Change("d", ChangeKind.OPAQUE, str(src / "d")),
               Change("d/new", ChangeKind.ADD, str(src / "d" / "new"))]
    buf = io.BytesIO()
    write_layer(reversed(changes), buf, Compression.NONE)
    names = [m.name for m in untar(buf.getvalue())]
    assert names == [".wh.gone", "d", "d/.wh..wh..opq", "d/new", "x/y/.wh.gone"]


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../../b"])
def test_writer_refuses_escaping_change_paths(tmp_path: Path, bad: str):
    with pytest.raises(ImageError):
        write_layer([Change(bad, ChangeKind.DELETE)], io.BytesIO(), Compression.NONE)


def _apply(target: Path, *layers: bytes, is_root: bool | None = None) -> None:
    for i, data in enumerate(layers):
        apply_layer(io.BytesIO(data), target, name=f"L{i}", is_root=is_root)


@pytest.mark.parametrize("comp", list(Compression))
def test_apply_round_trips_the_tree(tmp_path: Path, comp: Compression):
    src = make_tree(tmp_path / "src")
    data, _ = layer_bytes(src, comp)
    dst = tmp_path / "dst"
    dst.mkdir()
    _apply(dst, data)
    for dirpath, dirs, files in os.walk(src):
        for n in dirs + files:
            a = Path(dirpath) / n
            b = dst / a.relative_to(src)
            sa, sb = os.lstat(a), os.lstat(b)
            assert stat.S_IFMT(sa.st_mode) == stat.S_IFMT(sb.st_mode), a
            if not stat.S_ISLNK(sa.st_mode):
                assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), a
            assert int(sa.st_mtime) == int(sb.st_mtime), a
            if IS_ROOT:
                assert (sa.st_uid, sa.st_gid) == (sb.st_uid, sb.st_gid), a
            if stat.S_ISREG(sa.st_mode):
                assert a.read_bytes() == b.read_bytes()
            if stat.S_ISLNK(sa.st_mode):
                assert os.readlink(a) == os.readlink(b)
    assert os.stat(dst / "bin" / "tool").st_ino == os.stat(dst / "bin" / "tool-link").st_ino
    assert os.stat(dst / "bin" / "tool").st_mode & stat.S_ISUID
    assert os.getxattr(dst / "bin" / "tool", "user.note") == b"\xff\x00binary"
    assert (dst / "empty").is_dir() and not any((dst / "empty").iterdir())


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _f(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _d(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def test_whiteout_and_opaque_hide_only_lower_layers(tmp_path: Path):
    base = _tar([_d("d"), _f("d/old"), _d("d/sub"), _f("d/sub/deep"), _f("keep"), _f("gone"),
                 _d("gonedir"), _f("gonedir/x")])
    top = _tar([_d("d"), _f("d/-first", b"new"), _f("d/.wh..wh..opq", b""),
                _f("d/new", b"new"), _f(".wh.gone", b""), _f(".wh.gonedir", b""),
                _f(".wh.never-existed", b"")])
    dst = tmp_path / "root"
    dst.mkdir()
    _apply(dst, base, top)
    assert sorted(p.name for p in (dst / "d").iterdir()) == ["-first", "new"]
    assert (dst / "keep").exists()
    assert not (dst / "gone").exists() and not (dst / "gonedir").exists()
    assert not list(dst.rglob(".wh.*"))


def test_apply_follows_symlinks_inside_the_root(tmp_path: Path):
    # Debian's usrmerge: lib -> usr/lib; a later layer writing lib/x lands in usr/lib/x.
    link = tarfile.TarInfo("lib")
    link.type, link.linkname = tarfile.SYMTYPE, "usr/lib"
    abs_link = tarfile.TarInfo("run-link")
    abs_link.type, abs_link.linkname = tarfile.SYMTYPE, "/run"
    base = _tar([_d("usr"), _d("usr/lib"), (link, None), _d("run"), (abs_link, None)])
    top = _tar([_f("lib/x", b"lib"), _f("run-link/pid", b"1")])
    dst = tmp_path / "root"
    dst.mkdir()
    _apply(dst, base, top)
    assert (dst / "usr" / "lib" / "x").read_bytes() == b"lib"
    assert (dst / "run" / "pid").read_bytes() == b"1"   # absolute link re-rooted


def test_device_nodes_refused_when_not_root(tmp_path: Path):
    dev = tarfile.TarInfo("dev/null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    dst = tmp_path / "root"
    dst.mkdir()
    with pytest.raises(ImageError, match=r"layer L0.*dev/null.*root"):
        _apply(dst, _tar([(dev, None)]), is_root=False)


@pytest.mark.skipif(not IS_ROOT, reason="overlay whiteout devices need root to create")
def test_changes_from_upperdir_reads_overlay_whiteouts_and_opaque_dirs(tmp_path: Path):
    up = tmp_path / "upper"
    (up / "opq").mkdir(parents=True)
    os.setxattr(up / "opq", "trusted.overlay.opaque", b"y")
    (up / "opq" / "f").write_text("f")
    os.mknod(up / "deleted", stat.S_IFCHR | 0o600, 0)
    (up / "added").write_text("a")
    kinds = {c.path: c.kind for c in changes_from_upperdir(up)}
    assert kinds == {"added": ChangeKind.ADD, "deleted": ChangeKind.DELETE,
                     "opq": ChangeKind.OPAQUE, "opq/f": ChangeKind.ADD}
    buf = io.BytesIO()
    write_layer(changes_from_upperdir(up), buf, Compression.NONE)
    members = untar(buf.getvalue())
    assert [m.name for m in members] == [".wh.deleted", "added", "opq", "opq/.wh..wh..opq",
                                         "opq/f"]
    # overlay's own xattrs never leak into the layer
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for m in members
                   for k in m.pax_headers)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to chown to large ids")
def test_values_beyond_ustar_go_into_pax_records_gnu_tar_agrees(tmp_path: Path):
    root = tmp_path / "t"
    root.mkdir()
    deep = root / ("d" * 80) / ("e" * 80)
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    os.symlink("t" * 150, root / "longlink")
    os.chown(deep / "f", 3_000_000, 4_000_000)           # > 0o7777777: needs pax uid/gid
    data, _ = layer_bytes(root, Compression.NONE)
    members = {m.name: m for m in untar(data)}
    f = members[f"{'d' * 80}/{'e' * 80}/f"]
    assert (f.uid, f.gid) == (3_000_000, 4_000_000)
    assert members["longlink"].linkname == "t" * 150
    listing = subprocess.run(["tar", "-tvf", "-", "--numeric-owner"], input=data,
                             capture_output=True, check=True).stdout.decode()
    assert "3000000/4000000" in listing and f"{'e' * 80}/f" in listing


@pytest.mark.skipif(not IS_ROOT, reason="needs root to drop to an unprivileged user")
def test_unprivileged_apply_keeps_read_only_dirs_writable_until_the_end(
        request: pytest.FixtureRequest):
    ro, _ = _d("ro")
    ro.mode = 0o555
    base = _tar([(ro, None), _f("ro/f", b"1")])
    top = _tar([_f("ro/g", b"2")])
    dev = tarfile.TarInfo("null")
    dev.type = tarfile.CHRTYPE
    # pytest's tmp_path is not traversable by nobody; use a world-traversable scratch dir.
    scratch = Path(tempfile.mkdtemp(prefix="pybuild-unpriv-"))
    os.chmod(scratch, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(scratch))
    target = scratch / "root"
    target.mkdir()
    os.chown(target, 65534, 65534)
    pid = os.fork()
    if pid == 0:  # the child: nobody, no capabilities
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            _apply(target, base, top)                         # is_root detected: False
            try:
                _apply(target, _tar([(dev, None)]))
            except ImageError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stat.S_IMODE(os.stat(target / "ro").st_mode) == 0o555
    assert (target / "ro" / "f").read_bytes() == b"1"
    assert (target / "ro" / "g").read_bytes() == b"2"
    assert os.stat(target / "ro" / "g").st_uid == 65534


@pytest.mark.skipif(not IS_ROOT, reason="overlay whiteouts are 0:0 devices: root only")
def test_overlay_whiteout_mode_writes_overlay_form_without_leaving_the_root(tmp_path: Path):
    layer = _tar([_d("d"), _f("d/.wh..wh..opq", b""), _f("d/new"), _f(".wh.gone", b""),
                  _f("sub/.wh.x", b"")])
    dst = tmp_path / "lower"
    dst.mkdir()
    apply_layer(io.BytesIO(layer), dst, name="L", whiteouts="overlay")
    assert os.getxattr(dst / "d", "trusted.overlay.opaque") == b"y"
    for victim in ("gone", "sub/x"):
        st = os.lstat(dst / victim)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (dst / "d" / "new").exists() and not list(dst.rglob(".wh.*"))
    # an absolute symlink is re-rooted, never followed to the host
    host = tmp_path / "host"
    host.mkdir()
    evil = tarfile.TarInfo("evil")
    evil.type, evil.linkname = tarfile.SYMTYPE, str(host)
    dst2 = tmp_path / "lower2"
    dst2.mkdir()
    apply_layer(io.BytesIO(_tar([(evil, None), _f("evil/.wh.planted", b"")])), dst2,
                name="L", whiteouts="overlay")
    assert list(host.iterdir()) == []
    with pytest.raises(ImageError, match="need root"):
        apply_layer(io.BytesIO(layer), tmp_path / "lower", whiteouts="overlay", is_root=False)


def test_plain_archive_mode_extracts_wh_names_as_files(tmp_path: Path):
    dst = tmp_path / "ctx"
    dst.mkdir()
    (dst / "keep").write_text("lower")
    apply_layer(io.BytesIO(_tar([_f(".wh.keep", b"a file"), _f("d/.wh..wh..opq", b"")])), dst,
                name="ADD x.tar", whiteouts="none")
    assert (dst / "keep").read_text() == "lower"
    assert (dst / ".wh.keep").read_bytes() == b"a file"
    assert (dst / "d" / ".wh..wh..opq").exists()
    with pytest.raises(ValueError):
        apply_layer(io.BytesIO(b""), dst, whiteouts="bogus")


# --- ownership: host ids mapped back to container ids (rootless sandboxes) ---------------------
def _owned_tree(root: Path) -> Path:
    """Files owned as a rootless subid sandbox leaves them: container root = host 1001,
    container 1..65536 = host 100000.. (so container 1000 = host 100999)."""
    (root / "home" / "app").mkdir(parents=True)
    (root / "home" / "app" / "f").write_text("mine")
    os.link(root / "home" / "app" / "f", root / "home" / "app" / "f-link")
    (root / "rootfile").write_text("root's")
    (root / "stranger").write_text("unmapped")
    if IS_ROOT:
        for p in ("home", "home/app", "home/app/f"):
            os.chown(root / p, 100999, 100999)
        os.chown(root / "rootfile", 1001, 1001)
        os.chown(root / "stranger", 5, 5)
    return root


ROOTLESS = ((0, 1001, 1), (1, 100000, 65536))


def _owners(data: bytes) -> dict[str, tuple[int, int]]:
    return {m.name: (m.uid, m.gid) for m in untar(data)}


def test_id_mapping_translates_host_ids_and_overflows_the_rest() -> None:
    from builder.oci.layers import IdMapping

    m = IdMapping.of(ROOTLESS, ROOTLESS)
    assert m.to_container(100999, 1001) == (1000, 0)
    assert m.to_container(100000 + 65536, 5) == (65534, 65534)  # just past the range
    assert IdMapping().identity and IdMapping().to_container(7, 8) == (7, 8)
    from builder.sandbox.spec import IdMap
    assert IdMapping.of([IdMap(0, 1001, 1)], ()) == IdMapping(((0, 1001, 1),), ())


def test_writer_records_container_ids_with_a_map_and_host_ids_without(tmp_path: Path) -> None:
    if not IS_ROOT:
        pytest.skip("needs root: chown to subordinate host ids")
    from builder.oci.layers import IdMapping

    root = _owned_tree(tmp_path / "t")
    host = _owners(layer_bytes(root, Compression.NONE)[0])
    assert host["home/app/f"] == (100999, 100999) and host["rootfile"] == (1001, 1001)
    m = IdMapping.of(ROOTLESS, ROOTLESS)
    # The map given to the writer ...
    mapped_data, res = layer_bytes(root, Compression.NONE, id_map=m)
    mapped = _owners(mapped_data)
    assert mapped["home"] == mapped["home/app"] == mapped["home/app/f"] == (1000, 1000)
    assert mapped["home/app/f-link"] == (1000, 1000)  # the hardlink entry too
    assert mapped["rootfile"] == (0, 0)
    assert mapped["stranger"] == (65534, 65534)
    # ... or carried by each change (what builder.snapshot.changes does) gives the same bytes.
    buf = io.BytesIO()
    per_change = [Change(c.path, c.kind, c.source, m) for c in changes_from_tree(root)]
    assert write_layer(per_change, buf, Compression.NONE).diff_id == res.diff_id
    assert buf.getvalue() == mapped_data
    # An identity map is no map at all: byte-identical to the unmapped layer.
    assert layer_bytes(root, Compression.NONE, id_map=IdMapping())[0] == \
        layer_bytes(root, Compression.NONE)[0]
    # A change's own map wins over the writer's default.
    buf = io.BytesIO()
    write_layer(per_change, buf, Compression.NONE, id_map=IdMapping())
    assert buf.getvalue() == mapped_data


def test_unmapped_writer_records_lstat_owners(tmp_path: Path) -> None:
    root = _owned_tree(tmp_path / "t")
    st = os.lstat(root / "rootfile")
    assert _owners(layer_bytes(root, Compression.NONE)[0])["rootfile"] == (st.st_uid, st.st_gid)


# --- the block pipeline: pieces, errors, bounded buffers ----------------------------------------
def _compress(comp: Compression, pieces: list[bytes], threads: int = 3) -> bytes:
    from builder.oci.compression import Compressor

    buf = io.BytesIO()
    c = Compressor(buf, comp, threads=threads)
    released: list[int] = []
    for i, p in enumerate(pieces):
        c.block(memoryview(p), lambda i=i: released.append(i))  # type: ignore[misc]
    c.close()
    assert sorted(released) == list(range(len(pieces)))  # every piece handed back
    return buf.getvalue()


@pytest.mark.parametrize("comp", list(Compression))
def test_compressed_bytes_do_not_depend_on_how_the_stream_is_cut(comp: Compression) -> None:
    from builder.oci.compression import BLOCK

    data = random.Random(3).randbytes(BLOCK) * 4 + b"tail" * 1000  # compressible, > 4 blocks
    one_block_each = [data[i:i + BLOCK] for i in range(0, len(data), BLOCK)]
    big_pieces = [data[:3 * BLOCK], data[3 * BLOCK:]]
    a = _compress(comp, one_block_each)
    assert _compress(comp, big_pieces) == a
    assert _compress(comp, big_pieces, threads=1) == a
    assert plain(a, comp) == data


def test_a_failing_output_raises_in_the_caller_and_stops_the_sink_thread(
        tmp_path: Path) -> None:
    import threading

    class Full:
        def __init__(self) -> None:
            self.n = 0

        def write(self, data: bytes) -> int:
            self.n += len(data)
            if self.n > 5 << 20:
                raise OSError(28, "No space left on device")
            return len(data)

    root = tmp_path / "t"
    root.mkdir()
    for i in range(6):
        (root / f"f{i}").write_bytes(random.Random(i).randbytes(3 << 20))
    with pytest.raises(OSError, match="No space left"):
        write_layer(changes_from_tree(root), Full(), Compression.NONE)
    assert not [t for t in threading.enumerate() if t.name == "layer-sink"]


@pytest.mark.parametrize("comp", [Compression.GZIP, Compression.ZSTD])
def test_the_sink_recycles_a_bounded_number_of_buffers(comp: Compression) -> None:
    from builder.oci.compression import SEGMENT, BlockSink, Compressor

    class Slow:
        def write(self, data: bytes) -> int:
            time.sleep(0.001)
            return len(data)

    c = Compressor(Slow(), comp, level=1, threads=2)
    sink = BlockSink(c)
    chunk = random.Random(1).randbytes(700_001)  # odd size: segments cut mid-write
    h = hashlib.sha256()
    for _ in range(60):                                # ~42 MB, > 10 segments
        sink.write(chunk)
        h.update(chunk)
    sink.close()
    assert sink.hash.hexdigest() == h.hexdigest() and sink.size == 60 * len(chunk)
    assert sink._allocated <= c.max_held(SEGMENT) + 3
