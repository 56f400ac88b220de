"""Plain-URL downloads (ADD <url>): transport.open_url's redirect and TLS policy, and
registry.fetch's conditional requests, validators record and size cap — against real HTTP and
HTTPS servers on 127.0.0.1 started here (a self-signed certificate made with openssl)."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import RegistryError
from builder.registry import fetch
from builder.registry.transport import open_url
from builder.store import Store

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server:
    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.seen: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append({k.lower(): v for k, v in self.headers.items()})
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass    # a client refusing our test certificate is expected, not noise

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _redirect(location: str) -> Route:
    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return route


def _body(data: bytes, *, length: bool = True, etag: str = "",
          last_modified: str = "") -> Route:
    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        if etag and h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.end_headers()
            return
        h.send_response(200)
        if length:
            h.send_header("Content-Length", str(len(data)))
        else:
            h.send_header("Connection", "close")
        if etag:
            h.send_header("ETag", etag)
        if last_modified:
            h.send_header("Last-Modified", last_modified)
        h.end_headers()
        h.wfile.write(data)
        if not length:
            h.close_connection = True
    return route


@pytest.fixture
def plain() -> Iterator[_Server]:
    s = _Server({})
    yield s
    s.close()


@pytest.fixture
def cert(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    (tmp_path / "both.pem").write_text(crt.read_text() + key.read_text())
    return tmp_path


@pytest.fixture
def secure(cert: Path) -> Iterator[tuple[_Server, ssl.SSLContext]]:
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")
    s = _Server({}, tls=srv_ctx)
    yield s, ssl.create_default_context(cafile=str(cert / "cert.pem"))
    s.close()


def test_https_to_http_redirect_is_refused(plain: _Server,
                                           secure: tuple[_Server, ssl.SSLContext]) -> None:
    srv, client_ctx = secure
    plain.routes["/f"] = _body(b"insecure")
    srv.routes["/f"] = _redirect(f"{plain.base}/f")
    with pytest.raises(RegistryError, match="from https to plain http"):
        open_url(f"{srv.base}/f", ssl_context=client_ctx)
    assert plain.seen == []          # the downgraded URL was never asked


def test_http_to_https_redirect_is_followed(plain: _Server,
                                            secure: tuple[_Server, ssl.SSLContext]) -> None:
    srv, client_ctx = secure
    srv.routes["/f"] = _body(b"over tls")
    plain.routes["/f"] = _redirect(f"{srv.base}/f")
    with open_url(f"{plain.base}/f", ssl_context=client_ctx) as resp:
        assert resp.status == 200 and resp.read() == b"over tls"
        assert resp.url == f"{srv.base}/f"


def test_untrusted_certificate_is_refused(secure: tuple[_Server, ssl.SSLContext]) -> None:
    srv, _ = secure
    srv.routes["/f"] = _body(b"x")
    with pytest.raises(RegistryError, match="TLS failed") as exc:
        open_url(f"{srv.base}/f")      # the system trust store does not know our test CA
    assert f"{srv.base}/f" in exc.value.message


def test_other_schemes_and_redirect_loops_are_refused(plain: _Server) -> None:
    with pytest.raises(RegistryError, match="unsupported URL"):
        open_url("ftp://127.0.0.1/x")
    plain.routes["/loop"] = _redirect("/loop")
    with pytest.raises(RegistryError, match="more than 5 redirects"):
        open_url(f"{plain.base}/loop")
    plain.routes["/file"] = _redirect("file:///etc/passwd")
    with pytest.raises(RegistryError, match="unsupported URL scheme 'file'"):
        open_url(f"{plain.base}/file")


def test_error_status_names_the_url(plain: _Server) -> None:
    with pytest.raises(RegistryError, match=r"GET .*/nope: HTTP 404") as exc:
        open_url(f"{plain.base}/nope")
    assert exc.value.hint == "check the URL"


def test_fetch_remembers_validators_and_revalidates(tmp_path: Path, plain: _Server) -> None:
    store = Store(tmp_path / "store")
    lm = "Sun, 13 Sep 2020 12:26:40 GMT"
    plain.routes["/a"] = _body(b"alpha", etag='"e1"', last_modified=lm)
    url = f"{plain.base}/a"
    first, downloaded = fetch.fetch(store, url)
    assert downloaded and first.digest == Digest.of_bytes(b"alpha")
    assert first.mtime == 1_600_000_000 and first.etag == '"e1"'
    assert "if-none-match" not in plain.seen[-1]
    again, downloaded = fetch.fetch(store, url)
    assert not downloaded and again == first
    assert plain.seen[-1]["if-none-match"] == '"e1"'
    assert plain.seen[-1]["if-modified-since"] == lm
    # revalidate=False (--no-cache) sends no validators and downloads again
    _, downloaded = fetch.fetch(store, url, revalidate=False)
    assert downloaded and "if-none-match" not in plain.seen[-1]
    assert fetch.remembered(store, url) == first
    assert fetch.remembered(store, url + "?other") is None


def test_a_304_to_an_unconditional_request_is_an_error(tmp_path: Path, plain: _Server) -> None:
    def not_modified(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(304)
        h.end_headers()
    plain.routes["/b"] = not_modified
    with pytest.raises(RegistryError, match="304"):
        fetch.fetch(Store(tmp_path / "store"), f"{plain.base}/b")


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_size_cap_stores_nothing(tmp_path: Path, plain: _Server, length: bool) -> None:
    store = Store(tmp_path / "store")
    plain.routes["/big"] = _body(b"y" * (3 << 20), length=length)
    with pytest.raises(RegistryError, match="1048576"):
        fetch.fetch(store, f"{plain.base}/big", environ={"PYBUILD_FETCH_MAX_BYTES": "1048576"})
    assert list(store.blobs()) == [] and list((store.root / "tmp").iterdir()) == []


def test_checksum_mismatch_names_both_digests(tmp_path: Path, plain: _Server) -> None:
    store = Store(tmp_path / "store")
    plain.routes["/c"] = _body(b"content")
    wrong = Digest.of_bytes(b"other")
    with pytest.raises(fetch.ChecksumMismatch) as exc:
        fetch.fetch(store, f"{plain.base}/c", expected=wrong)
    assert str(wrong) in exc.value.message
    assert str(Digest.of_bytes(b"content")) in exc.value.message
    assert list(store.blobs()) == [] and fetch.remembered(store, f"{plain.base}/c") is None


def test_mtime_is_the_epoch_without_a_usable_last_modified() -> None:
    d = Digest.of_bytes(b"")
    assert fetch.Remote("u", d).mtime == 0
    assert fetch.Remote("u", d, last_modified="yesterday").mtime == 0
    assert fetch.Remote("u", d, last_modified="Thu, 01 Jan 1970 00:01:40 GMT").mtime == 100


def test_a_304_cannot_confirm_content_that_checksum_refuses(tmp_path: Path,
                                                            plain: _Server) -> None:
    """The last download of the URL is remembered with other content than --checksum names:
    the request is unconditional (a 304 must not stand for the refused bytes)."""
    store = Store(tmp_path / "store")
    plain.routes["/d"] = _body(b"old", etag='"o"')
    url = f"{plain.base}/d"
    fetch.fetch(store, url)
    with pytest.raises(fetch.ChecksumMismatch):
        fetch.fetch(store, url, expected=Digest.of_bytes(b"new"))
    assert "if-none-match" not in plain.seen[-1]


def test_url_credentials_go_to_their_host_only_and_are_never_shown(
        tmp_path: Path, plain: _Server) -> None:
    other = _Server({"/f": _body(b"elsewhere")})
    try:
        plain.routes["/here"] = _body(b"here")
        plain.routes["/away"] = _redirect(f"{other.base}/f")
        netloc = plain.base.removeprefix("http://")
        with open_url(f"http://us%40r:p%3Ass@{netloc}/here") as resp:
            assert resp.read() == b"here"
        assert plain.seen[-1]["authorization"] == "Basic dXNAcjpwOnNz"   # us@r:p:ss
        with open_url(f"http://u:secret@{netloc}/away") as resp:
            assert resp.read() == b"elsewhere"
        assert "authorization" in plain.seen[-1] and "authorization" not in other.seen[-1]
        with pytest.raises(RegistryError) as exc:
            fetch.fetch(Store(tmp_path / "store"), f"http://u:secret@{netloc}/missing")
        assert "secret" not in exc.value.message and "u:xxxxx@" in exc.value.message
    finally:
        other.close()
