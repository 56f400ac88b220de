"""What a build puts in its layers, checked with the reference unpacker (umoci): whiteouts,
hardlinks, symlinks, setuid bits, empty directories, and COPY/ADD/WORKDIR semantics."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from builder.errors import BuildFailed
from tests.integration.build_helpers import busybox_store, export_layout, run_build, umoci_unpack

FS_DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest
RUN rm -f /bin/vi /etc/group && rm -rf /home
RUN mkdir -p /data/empty /data/dir && echo hi > /data/dir/a && ln /data/dir/a /data/dir/hard \\
 && ln -s dir/a /data/sym && cp /bin/busybox /data/suid && chmod 4755 /data/suid
RUN rm -rf /data/dir && mkdir /data/dir && echo new > /data/dir/b
"""


def test_run_layers_survive_umoci_unpack(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    run = run_build(store, ctx, FS_DOCKERFILE, source_date_epoch=0)
    root = umoci_unpack(export_layout(store, run.result, tmp_path / "layout"),
                        tmp_path / "bundle")
    # whiteouts: base files deleted by a RUN are gone
    assert not (root / "bin" / "vi").exists() and (root / "bin" / "sh").exists()
    assert not (root / "etc" / "group").exists() and (root / "etc" / "passwd").exists()
    assert not (root / "home").exists()
    # an opaque directory: the replaced dir has only its new content
    assert sorted(os.listdir(root / "data" / "dir")) == ["b"]
    assert (root / "data" / "empty").is_dir() and not os.listdir(root / "data" / "empty")
    assert os.readlink(root / "data" / "sym") == "dir/a"
    st = os.stat(root / "data" / "suid")
    assert stat.S_IMODE(st.st_mode) == 0o4755


def test_hardlinks_in_one_layer_stay_linked(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    df = ("FROM localhost/pybuild/busybox:latest\n"
          "RUN mkdir /h && echo x > /h/one && ln /h/one /h/two\n")
    run = run_build(store, ctx, df)
    root = umoci_unpack(export_layout(store, run.result, tmp_path / "layout"),
                        tmp_path / "bundle")
    a, b = os.stat(root / "h" / "one"), os.stat(root / "h" / "two")
    assert a.st_ino == b.st_ino and a.st_nlink == 2


def _tgz(path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("pkg/readme", b"packed\n"), ("pkg/bin/tool", b"#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


COPY_DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd \\
 && echo 'staff:x:50:' >> /etc/group
WORKDIR /work/sub
COPY src/ /dst/
COPY *.txt /txt/
COPY one.txt /renamed.txt
COPY one.txt /existing
COPY --chown=app:staff --chmod=u=rwx,g=rx,o= one.txt /owned/
COPY --chown=app one.txt /owned-user/
COPY --chmod=0600 links/ /links/
ADD pkg.tgz /unpacked/
ADD two.txt relative.txt
COPY <<EOF /inline.txt
inline $HOSTNAME
EOF
"""


def test_copy_add_workdir_semantics(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    (ctx / "src" / "nested" / "empty").mkdir(parents=True)
    (ctx / "src" / "top.txt").write_text("top\n")
    (ctx / "src" / "nested" / "deep.txt").write_text("deep\n")
    (ctx / "src" / "nested" / "x.bin").write_text("x")
    os.chmod(ctx / "src" / "nested" / "x.bin", 0o751)
    (ctx / "one.txt").write_text("one\n")
    (ctx / "two.txt").write_text("two\n")
    (ctx / "links").mkdir()
    (ctx / "links" / "f").write_text("f")
    os.link(ctx / "links" / "f", ctx / "links" / "g")
    os.symlink("f", ctx / "links" / "s")
    _tgz(ctx / "pkg.tgz")
    (ctx / ".dockerignore").write_text("src/nested/x.bin\n")
    df = COPY_DOCKERFILE.replace("COPY one.txt /existing",
                                 "RUN mkdir /existing\nCOPY one.txt /existing")
    run = run_build(store, ctx, df)
    root = umoci_unpack(export_layout(store, run.result, tmp_path / "layout"),
                        tmp_path / "bundle")
    # directory contents, not the directory; .dockerignore applies inside copied dirs
    assert (root / "dst" / "top.txt").read_text() == "top\n"
    assert (root / "dst" / "nested" / "deep.txt").exists()
    assert (root / "dst" / "nested" / "empty").is_dir()
    assert not (root / "dst" / "nested" / "x.bin").exists()
    assert sorted(os.listdir(root / "txt")) == ["one.txt", "two.txt"]
    assert (root / "renamed.txt").read_text() == "one\n"
    assert (root / "existing" / "one.txt").exists()  # existing dir: copied into it
    st = os.stat(root / "owned" / "one.txt")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 50, 0o750)
    st = os.stat(root / "owned-user" / "one.txt")
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert stat.S_IMODE(os.stat(root / "links" / "f").st_mode) == 0o600
    assert os.stat(root / "links" / "f").st_ino == os.stat(root / "links" / "g").st_ino
    assert os.readlink(root / "links" / "s") == "f"
    assert (root / "unpacked" / "pkg" / "readme").read_text() == "packed\n"
    assert (root / "work" / "sub").is_dir()
    assert (root / "work" / "sub" / "relative.txt").read_text() == "two\n"
    assert (root / "inline.txt").read_text().startswith("inline")
    st = os.stat(root / "dst" / "top.txt")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_missing_source_fails_with_the_instruction(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, "FROM localhost/pybuild/busybox:latest\nCOPY nope.txt /\n")
    diag = info.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2 and "not found" in diag.message


def test_copy_refuses_paths_above_the_context_with_the_instruction(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    for src in ("../outside.txt", "sub/../../outside.txt"):
        with pytest.raises(BuildFailed) as info:
            run_build(store, ctx, f"FROM scratch\nCOPY {src} /x\n")
        diag = info.value.diagnostics[0]
        assert diag.span is not None and (diag.span.line, diag.span.column) == (2, 1)
        assert "outside the build context" in diag.message, diag.message


def test_copy_of_a_symlink_reruns_when_its_target_changes(tmp_path: Path) -> None:
    """The COPY copies the link's target, so the target's content is part of its key."""
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "real.txt").write_text("one\n")
    os.symlink("real.txt", ctx / "link")
    df = "FROM scratch\nCOPY link /copied\n"
    first = run_build(store, ctx, df)
    (ctx / "real.txt").write_text("two\n")
    second = run_build(store, ctx, df)
    assert second.ran == ["[stage-0 2/2] COPY link /copied"], (second.ran, second.cached)
    assert second.result.manifest_digest != first.result.manifest_digest


def test_add_of_a_fifo_copies_it_without_reading_it(tmp_path: Path) -> None:
    """ADD sniffs regular files only for archives: opening a FIFO would block the build."""
    from tests.conftest import run_pybuild

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    os.mkfifo(ctx / "pipe")
    (ctx / "Dockerfile").write_text("FROM scratch\nADD pipe /pipe\n")
    out = tmp_path / "out"
    proc = run_pybuild("--root", str(tmp_path / "root"), "build", "-q", "-o",
                       f"type=local,dest={out}", str(ctx), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.lstat(out / "pipe").st_mode)


def test_unknown_chown_user_names_the_instruction(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a")
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, "FROM scratch\nCOPY --chown=nobody a.txt /x\n")
    assert info.value.diagnostics, info.value.message
    diag = info.value.diagnostics[0]
    assert diag.span is not None and (diag.span.line, diag.span.column) == (2, 1)
    assert "nobody" in diag.message


def test_hostile_add_archive_fails_at_the_instruction(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../evil")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    (ctx / "evil.tar").write_bytes(buf.getvalue())
    with pytest.raises(BuildFailed) as info_:
        run_build(store, ctx, "FROM scratch\nADD evil.tar /x/\n")
    assert info_.value.diagnostics, info_.value.message
    diag = info_.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2 and "evil" in diag.message
    assert not (tmp_path / "evil").exists() and list(store.tmp_root.iterdir()) == []


def test_copy_from_a_stage_keeps_the_name_of_a_symlink_source(tmp_path: Path) -> None:
    """`COPY --from=a /d/link /out/` copies the link's target under the name `link`, as a
    source from the context does (Docker follows a named source and keeps its name)."""
    from tests.conftest import run_pybuild

    ctx = tmp_path / "ctx"
    (ctx / "d").mkdir(parents=True)
    (ctx / "d" / "real.txt").write_text("real\n")
    os.symlink("real.txt", ctx / "d" / "link")
    (ctx / "Dockerfile").write_text("FROM scratch AS a\nCOPY d/ /d/\n"
                                    "FROM scratch\nCOPY --from=a /d/link /out/\n"
                                    "COPY --from=a /d/link /file\n")
    out = tmp_path / "out"
    proc = run_pybuild("--root", str(tmp_path / "root"), "build", "-q", "-o",
                       f"type=local,dest={out}", str(ctx))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out / "out")) == ["link"]
    assert (out / "out" / "link").read_text() == "real\n"
    assert not (out / "out" / "link").is_symlink()
    assert (out / "file").read_text() == "real\n"


def test_context_sources_are_cleaned_lexically_like_their_cache_key(tmp_path: Path) -> None:
    """`COPY a/../b.txt` names `b.txt` (paths are cleaned lexically, as BuildKit does, and
    as the cache key selects it), even when `a` is a symlink into another directory."""
    from tests.conftest import run_pybuild

    ctx = tmp_path / "ctx"
    (ctx / "sub" / "dir").mkdir(parents=True)
    (ctx / "b.txt").write_text("top\n")
    (ctx / "sub" / "b.txt").write_text("sub\n")
    os.symlink("sub/dir", ctx / "a")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a/../b.txt /x\n")
    out = tmp_path / "out"
    proc = run_pybuild("--root", str(tmp_path / "root"), "build", "-q", "-o",
                       f"type=local,dest={out}", str(ctx))
    assert proc.returncode == 0, proc.stderr
    assert (out / "x").read_text() == "top\n"


def test_bind_mount_sources_stay_inside_the_context(tmp_path: Path) -> None:
    """`RUN --mount=type=bind,source=link` follows `link` inside the context (an absolute
    target is re-rooted there), and `source=../x` is refused: never a host directory."""
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    (ctx / "etc").mkdir(parents=True)
    (ctx / "etc" / "marker").write_text("inside\n")
    os.symlink("/etc", ctx / "link")
    run = run_build(store, ctx, "FROM localhost/pybuild/busybox:latest\n"
                    "RUN --mount=type=bind,source=link,target=/m cat /m/marker\n")
    assert "inside" in "\n".join(run.logs), run.logs
    (tmp_path / "outside").mkdir()
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, "FROM localhost/pybuild/busybox:latest\n"
                  "RUN --mount=type=bind,source=../outside,target=/m ls /m\n")
    diag = info.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2
    assert "outside the build context" in diag.message


def test_bind_mounts_of_the_context_honour_dockerignore(tmp_path: Path) -> None:
    """A bind mount shows the context as COPY sees it: without what .dockerignore excludes,
    with modes and symlinks kept, and without touching the context's files."""
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    (ctx / "src" / "logs").mkdir(parents=True)
    (ctx / "src" / "main.sh").write_text("echo main\n")
    os.chmod(ctx / "src" / "main.sh", 0o751)
    (ctx / "src" / "logs" / "debug.log").write_text("noise\n")
    (ctx / "secret.txt").write_text("hunter2\n")
    os.symlink("src/main.sh", ctx / "entry")
    (ctx / ".dockerignore").write_text("secret.txt\n**/logs\n")
    before = os.stat(ctx / "src" / "main.sh")
    run = run_build(store, ctx, "FROM localhost/pybuild/busybox:latest\n"
                    "RUN --mount=type=bind,target=/m cd /m && find . | sort && "
                    "stat -c '%a %n' src/main.sh && readlink entry\n"
                    "RUN --mount=type=bind,source=src,target=/s ls -A /s\n")
    logs = run.logs
    assert "./src/main.sh" in logs and "./Dockerfile" in logs, logs
    assert not any("secret" in ln or "logs" in ln for ln in logs), logs
    assert "751 src/main.sh" in logs and "src/main.sh" in logs, logs
    assert logs[-1:] == ["main.sh"], logs
    after = os.stat(ctx / "src" / "main.sh")
    assert (after.st_ctime_ns, after.st_nlink) == (before.st_ctime_ns, before.st_nlink)
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, "FROM localhost/pybuild/busybox:latest\n"
                  "RUN --mount=type=bind,source=secret.txt,target=/x cat /x\n")
    assert "excluded by .dockerignore" in info.value.diagnostics[0].message


def test_run_security_insecure_is_refused_at_its_line(tmp_path: Path) -> None:
    """As BuildKit without the security.insecure entitlement: the build fails there."""
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, "FROM localhost/pybuild/busybox:latest\n"
                  "RUN --security=insecure true\n")
    diag = info.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2
    assert "security.insecure" in diag.message
