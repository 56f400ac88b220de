"""ADD <http(s) url> end to end against a real HTTP server on 127.0.0.1 (started here): the
file's name, mode 0600 and mtime from Last-Modified, no extraction of a remote archive,
--chmod/--chown, --checksum, conditional requests and the cache, and failures at the ADD line."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.server
import io
import os
import socket
import stat
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import BuildFailed
from builder.export import OutputSpec
from builder.store import Store
from tests.integration.build_helpers import busybox_store, run_build

LAST_MODIFIED = 1_600_000_000   # 2020-09-13 12:26:40 UTC


@dataclass
class Resource:
    body: bytes
    etag: str = ""
    last_modified: int | None = None
    status: int = 200
    location: str = ""


@dataclass
class Server:
    """A loopback HTTP server serving `files` by path; records every request's headers."""

    base: str = ""
    files: dict[str, Resource] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            res = state.files.get(self.path)
            if res is None:
                self.send_error(404)
                return
            if res.location:
                self.send_response(res.status)
                self.send_header("Location", res.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if res.etag and self.headers.get("If-None-Match") == res.etag:
                self.send_response(304)
                self.send_header("ETag", res.etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(res.body)))
            if res.etag:
                self.send_header("ETag", res.etag)
            if res.last_modified is not None:
                self.send_header("Last-Modified",
                                 email.utils.formatdate(res.last_modified, usegmt=True))
            self.end_headers()
            self.wfile.write(res.body)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join()


def _tgz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("inside.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"in\n"))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    return ctx


def _local(store: Store, ctx: Path, df: str, out: Path, **kw: object):  # type: ignore[no-untyped-def]
    return run_build(store, ctx, df, outputs=(OutputSpec("local", str(out)),), **kw)


def test_add_url_to_dir_and_file_mode_mtime_no_extraction(tmp_path: Path,
                                                          server: Server) -> None:
    store = Store(tmp_path / "store")
    server.files["/dl/tool.txt"] = Resource(b"hello\n", etag='"v1"',
                                            last_modified=LAST_MODIFIED)
    archive = _tgz()
    server.files["/dl/a.tar.gz"] = Resource(archive)      # no Last-Modified: the epoch
    df = (f"FROM scratch\nADD {server.base}/dl/tool.txt /opt/\n"
          f"ADD {server.base}/dl/tool.txt /renamed.txt\n"
          f"ADD {server.base}/dl/a.tar.gz /arch/\n")
    out = tmp_path / "out"
    _local(store, _ctx(tmp_path), df, out)
    for path in (out / "opt" / "tool.txt", out / "renamed.txt"):
        assert path.read_bytes() == b"hello\n"
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert int(st.st_mtime) == LAST_MODIFIED
        assert (st.st_uid, st.st_gid) == (0, 0)
    # a remote archive is copied as is, never extracted (Dockerfile reference, ADD)
    assert os.listdir(out / "arch") == ["a.tar.gz"]
    assert (out / "arch" / "a.tar.gz").read_bytes() == archive
    assert gzip.decompress(archive)  # it really is an archive
    assert int(os.stat(out / "arch" / "a.tar.gz").st_mtime) == 0
    # no scratch left in the store's tmp
    assert not [p for p in (store.root / "tmp").iterdir() if p.is_dir()]


def test_add_url_chmod_and_chown(tmp_path: Path, server: Server) -> None:
    store = busybox_store(tmp_path)
    server.files["/x.sh"] = Resource(b"#!/bin/sh\necho ran-x\n")
    df = ("FROM localhost/pybuild/busybox:latest\n"
          f"ADD --chmod=755 --chown=12:34 {server.base}/x.sh /usr/local/bin/\n"
          "RUN stat -c 'mode=%a owner=%u:%g' /usr/local/bin/x.sh && /usr/local/bin/x.sh\n")
    run = run_build(store, _ctx(tmp_path), df)
    text = "\n".join(run.logs)
    assert "mode=755 owner=12:34" in text and "ran-x" in text


def test_checksum_good_bad_and_no_request_when_stored(tmp_path: Path, server: Server) -> None:
    store = Store(tmp_path / "store")
    body = b"checked\n"
    server.files["/c.bin"] = Resource(body)
    ctx = _ctx(tmp_path)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(BuildFailed) as exc:
        run_build(store, ctx, f"FROM scratch\nADD --checksum={wrong} {server.base}/c.bin /\n")
    diag = exc.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2
    assert wrong in exc.value.message and _sha(body) in exc.value.message
    assert not store.has_blob(Digest.parse(_sha(body)))
    assert not [p for p in (store.root / "tmp").iterdir()]  # nothing half-stored
    df = f"FROM scratch\nADD --checksum={_sha(body)} {server.base}/c.bin /\n"
    out = tmp_path / "out"
    _local(store, ctx, df, out)
    assert (out / "c.bin").read_bytes() == body
    n = len(server.requests)
    run = _local(store, ctx, df, tmp_path / "out2")
    assert len(server.requests) == n, "the stored blob answers --checksum without the network"
    assert (tmp_path / "out2" / "c.bin").read_bytes() == body
    assert any("ADD" in c for c in run.cached)


def test_conditional_request_304_is_cached_and_changes_rerun(tmp_path: Path,
                                                            server: Server) -> None:
    store = busybox_store(tmp_path)
    server.files["/f.txt"] = Resource(b"one\n", etag='"1"', last_modified=LAST_MODIFIED)
    df = ("FROM localhost/pybuild/busybox:latest\n"
          f"ADD {server.base}/f.txt /f.txt\n"
          "RUN cat /f.txt > /copy\n")
    ctx = _ctx(tmp_path)
    first = run_build(store, ctx, df)
    assert first.ran_any("ADD") and first.ran_any("RUN")
    second = run_build(store, ctx, df)
    path, headers = server.requests[-1]
    assert path == "/f.txt" and headers.get("if-none-match") == '"1"'
    assert "if-modified-since" in headers
    assert any("ADD" in c for c in second.cached) and any("RUN" in c for c in second.cached)
    assert not second.ran_any("RUN")
    assert second.result.manifest_digest == first.result.manifest_digest
    # the server's content changes: the ADD and everything after it run again
    server.files["/f.txt"] = Resource(b"two\n", etag='"2"', last_modified=LAST_MODIFIED + 60)
    third = run_build(store, ctx, df)
    assert third.ran_any("ADD") and third.ran_any("RUN")
    assert third.result.manifest_digest != first.result.manifest_digest
    # --no-cache downloads without validators
    n = len(server.requests)
    run_build(store, ctx, df, no_cache=True)
    assert len(server.requests) == n + 1
    assert "if-none-match" not in server.requests[-1][1]


def test_warm_rebuild_fast_path_never_answers_add_url(tmp_path: Path, server: Server) -> None:
    """The CLI's fast path answers from a build record; a build with ADD <url> keeps none,
    so the second CLI build asks the server again (and sees the new content)."""
    from tests.conftest import run_pybuild

    server.files["/v"] = Resource(b"v1\n", etag='"a"')
    ctx = _ctx(tmp_path)
    (ctx / "Dockerfile").write_text(f"FROM scratch\nADD {server.base}/v /v\n")
    root = str(tmp_path / "root")
    for expect in (b"v1\n", b"v2\n"):
        out = tmp_path / f"out-{expect.decode().strip()}"
        proc = run_pybuild("--root", root, "build", "-q", "-t", "localhost/t/addurl:1",
                           "-o", f"type=local,dest={out}", str(ctx), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert (out / "v").read_bytes() == expect
        server.files["/v"] = Resource(b"v2\n", etag='"b"')
    assert sum(1 for p, _ in server.requests if p == "/v") == 2
    # and a tag-only rebuild (the fast path's case) still asks the server
    n = len(server.requests)
    proc = run_pybuild("--root", root, "build", "-q", "-t", "localhost/t/addurl:1", str(ctx),
                       timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(server.requests) == n + 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["404", "refused", "ftp-redirect", "too-large"])
def test_failures_are_reported_at_the_add_line(tmp_path: Path, server: Server,
                                               case: str) -> None:
    from tests.conftest import run_pybuild

    server.files["/big"] = Resource(b"x" * 4096)
    server.files["/to-ftp"] = Resource(b"", status=302, location="ftp://127.0.0.1/file")
    url = {"404": f"{server.base}/missing",
           "refused": f"http://127.0.0.1:{_free_port()}/file",
           "ftp-redirect": f"{server.base}/to-ftp",
           "too-large": f"{server.base}/big"}[case]
    ctx = _ctx(tmp_path)
    (ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY Dockerfile /\nADD {url} /f\n")
    proc = run_pybuild("--root", str(tmp_path / "root"), "build", "-q", str(ctx),
                       env={"PYBUILD_FETCH_MAX_BYTES": "1024"}, timeout=120)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "Traceback" not in err
    assert f"{ctx / 'Dockerfile'}:3:1" in err or "Dockerfile:3:1" in err, err
    assert url in err
    expect = {"404": "HTTP 404", "refused": "cannot reach", "ftp-redirect": "ftp",
              "too-large": "more than the 1024"}[case]
    assert expect in err, err


def test_unpack_flag_extracts_a_remote_archive(tmp_path: Path, server: Server) -> None:
    store = Store(tmp_path / "store")
    server.files["/a.tar.gz"] = Resource(_tgz())
    out = tmp_path / "out"
    _local(store, _ctx(tmp_path), f"FROM scratch\nADD --unpack=true {server.base}/a.tar.gz "
           "/x/\n", out)
    assert os.listdir(out / "x") == ["inside.txt"]
    assert (out / "x" / "inside.txt").read_bytes() == b"in\n"


def test_same_bytes_without_validators_stay_cached(tmp_path: Path, server: Server) -> None:
    """A server with no ETag/Last-Modified answers 200 every time: the bytes are the key, so
    the same content keeps the ADD's copy and what follows cached."""
    store = busybox_store(tmp_path)
    server.files["/plain"] = Resource(b"same\n")
    df = ("FROM localhost/pybuild/busybox:latest\n"
          f"ADD {server.base}/plain /p\nRUN cat /p > /q\n")
    ctx = _ctx(tmp_path)
    run_build(store, ctx, df)
    second = run_build(store, ctx, df)
    assert len(server.requests) == 2 and "if-none-match" not in server.requests[-1][1]
    assert not second.ran_any("RUN") and any("RUN" in c for c in second.cached)


def test_git_sources_stay_unsupported_with_a_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with pytest.raises(BuildFailed) as exc:
        run_build(store, _ctx(tmp_path),
                  "FROM scratch\nADD https://127.0.0.1:9/repo.git#main /src\n")
    assert "git sources are not supported yet" in exc.value.message
    diag = exc.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2
