"""The registry transport's own logic: credential files, challenges, the Bearer token flow,
Basic auth, redirects (no Authorization to other hosts), error messages. An in-process HTTP
server stands in where our logic is under test; the real registry is in tests/integration."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import RegistryError
from builder.oci.model import OCI_MANIFEST
from builder.registry.auth import auth_files, lookup, parse_challenge
from builder.registry.transport import Client, is_insecure, registry_host
from tests.fake_http import FakeServer, Seen, serve

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64,
    "size": 2}, "layers": []}).encode()


def _auth_file(path: Path, entries: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {k: {"auth": base64.b64encode(v.encode()).decode()}
                                          for k, v in entries.items()}}))
    return path


def test_auth_file_order_follows_podman_and_docker(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    assert auth_files(env) == [tmp_path / "run/containers/auth.json",
                               tmp_path / ".docker/config.json"]
    assert auth_files({**env, "REGISTRY_AUTH_FILE": "/x.json"}) == [Path("/x.json")]
    assert auth_files({"HOME": "/h", "DOCKER_CONFIG": "/d"}) == [Path("/d/config.json")]


def test_lookup_finds_docker_hub_legacy_key_and_host_path_keys(tmp_path: Path) -> None:
    _auth_file(tmp_path / ".docker/config.json",
               {"https://index.docker.io/v1/": "hub:pw", "quay.io/team": "q:pw2"})
    env = {"HOME": str(tmp_path)}
    hub = lookup("docker.io", env)
    assert hub is not None and (hub.username, hub.password) == ("hub", "pw")
    quay = lookup("quay.io", env)
    assert quay is not None and quay.password == "pw2"
    assert lookup("ghcr.io", env) is None


def test_lookup_prefers_the_containers_auth_file(tmp_path: Path) -> None:
    _auth_file(tmp_path / "run/containers/auth.json", {"reg.example:5000": "pod:a:b"})
    _auth_file(tmp_path / ".docker/config.json", {"reg.example:5000": "dock:x"})
    creds = lookup("reg.example:5000", {"HOME": str(tmp_path),
                                        "XDG_RUNTIME_DIR": str(tmp_path / "run")})
    assert creds is not None and (creds.username, creds.password) == ("pod", "a:b")


def test_malformed_auth_file_is_a_registry_error(tmp_path: Path) -> None:
    f = tmp_path / "auth.json"
    f.write_text("{not json")
    with pytest.raises(RegistryError, match="auth.json"):
        lookup("x.io", {"REGISTRY_AUTH_FILE": str(f)})
    f.write_text(json.dumps({"auths": {"x.io": {"auth": "bm9jb2xvbg=="}}}))  # "nocolon"
    with pytest.raises(RegistryError, match="user:password"):
        lookup("x.io", {"REGISTRY_AUTH_FILE": str(f)})


def test_parse_challenge() -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
                        ',scope="repository:library/busybox:pull"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}
    b = parse_challenge('Basic realm="my \\"realm\\""')
    assert b is not None and b.scheme == "basic" and b.params["realm"] == 'my "realm"'


def test_insecure_hosts_and_docker_hub() -> None:
    assert is_insecure("localhost:5000", {}) and is_insecure("127.0.0.1:1", {})
    assert is_insecure("[::1]:5000", {})
    assert not is_insecure("reg.example:5000", {})
    env = {"PYBUILD_INSECURE_REGISTRIES": "reg.example:5000, other.example"}
    assert is_insecure("reg.example:5000", env) and not is_insecure("reg.example:5001", env)
    assert is_insecure("other.example:443", env)
    assert registry_host("docker.io") == "registry-1.docker.io"
    assert Client("docker.io", "library/busybox", environ={}).base == \
        "https://registry-1.docker.io"


def _token_registry(fake: FakeServer, want_basic: str | None) -> None:
    def v2(req: Seen) -> tuple[int, dict[str, str], bytes]:
        if req.headers.get("authorization") != "Bearer tok-123":
            return 401, {"WWW-Authenticate": f'Bearer realm="http://{fake.host}/token",'
                         'service="fake",scope="repository:team/app:pull"'}, \
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return 200, {"Content-Type": OCI_MANIFEST,
                     "Docker-Content-Digest": str(Digest.of_bytes(MANIFEST))}, MANIFEST

    def token(req: Seen) -> tuple[int, dict[str, str], bytes]:
        if want_basic is not None and req.headers.get("authorization") != want_basic:
            return 401, {}, b'{"details":"bad credentials"}'
        assert "scope=repository%3Ateam%2Fapp%3Apull" in req.path
        assert "service=fake" in req.path
        return 200, {"Content-Type": "application/json"}, b'{"access_token":"tok-123"}'

    fake.route("GET", "/v2/team/app/manifests/*", v2)
    fake.route("GET", "/token", token)


def test_bearer_token_flow_anonymous_asks_for_a_token_once() -> None:
    with serve(FakeServer()) as fake:
        _token_registry(fake, None)
        client = Client(fake.host, "team/app", environ={"REGISTRY_AUTH_FILE": "/nonexistent"})
        for _ in range(3):
            got = client.get_manifest("1")
            assert got.data == MANIFEST and got.media_type == OCI_MANIFEST
        assert sum(1 for s in fake.seen if s.path.startswith("/token")) == 1
        first = next(s for s in fake.seen if s.path.startswith("/v2/"))
        assert "application/vnd.oci.image.index.v1+json" in first.headers["accept"]
        assert "application/vnd.docker.distribution.manifest.v2+json" in first.headers["accept"]


def test_bearer_token_flow_sends_credentials_to_the_realm(tmp_path: Path) -> None:
    with serve(FakeServer()) as fake:
        basic = "Basic " + base64.b64encode(b"me:pw").decode()
        _token_registry(fake, basic)
        f = _auth_file(tmp_path / "auth.json", {fake.host: "me:pw"})
        assert Client(fake.host, "team/app",
                      environ={"REGISTRY_AUTH_FILE": str(f)}).get_manifest("1").data == MANIFEST
        bad = _auth_file(tmp_path / "bad.json", {fake.host: "me:wrong"})
        with pytest.raises(RegistryError) as err:
            Client(fake.host, "team/app", environ={"REGISTRY_AUTH_FILE": str(bad)}
                   ).get_manifest("1")
        assert "token server" in err.value.message and "401" in err.value.message
        assert "bad credentials" in err.value.message
        assert err.value.exit_code == 5


def test_basic_auth_retry_and_401_hint(tmp_path: Path) -> None:
    with serve(FakeServer()) as fake:
        good = "Basic " + base64.b64encode(b"u:p").decode()

        def blob(req: Seen) -> tuple[int, dict[str, str], bytes]:
            if req.headers.get("authorization") != good:
                return 401, {"WWW-Authenticate": 'Basic realm="r"'}, \
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            return 200, {}, b""

        fake.route("HEAD", "/v2/a/blobs/*", blob)
        d = Digest.of_bytes(b"x")
        f = _auth_file(tmp_path / "auth.json", {fake.host: "u:p"})
        assert Client(fake.host, "a", environ={"REGISTRY_AUTH_FILE": str(f)}).has_blob(d)
        with pytest.raises(RegistryError) as err:
            Client(fake.host, "a", environ={"REGISTRY_AUTH_FILE": "/none"}).has_blob(d)
        assert "HTTP 401" in err.value.message and fake.host in err.value.message
        assert err.value.hint is not None and "config.json" in err.value.hint


def test_redirect_to_another_host_drops_the_authorization_header(tmp_path: Path) -> None:
    with serve(FakeServer()) as cdn, serve(FakeServer()) as fake:
        cdn.route("GET", "/signed/blob", lambda req: (200, {}, b"layer-bytes"))
        fake.route("GET", "/v2/a/blobs/*", lambda req: (
            (307, {"Location": f"http://{cdn.host}/signed/blob?sig=1"}, b"")
            if req.headers.get("authorization") else
            (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")))
        f = _auth_file(tmp_path / "auth.json", {fake.host: "u:p"})
        client = Client(fake.host, "a", environ={"REGISTRY_AUTH_FILE": str(f)})
        with client.open_blob(Digest.of_bytes(b"layer-bytes")) as resp:
            assert resp.read() == b"layer-bytes"
        assert cdn.seen[0].path == "/signed/blob?sig=1"
        assert "authorization" not in cdn.seen[0].headers


def test_registry_error_code_and_message_are_reported() -> None:
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/manifests/nope", lambda req: (
            404, {"Content-Type": "application/json"},
            b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'))
        with pytest.raises(RegistryError) as err:
            Client(fake.host, "a", environ={}).get_manifest("nope")
        msg = err.value.message
        assert fake.host in msg and "nope" in msg and "HTTP 404" in msg
        assert "MANIFEST_UNKNOWN: manifest unknown" in msg


def test_manifest_not_matching_its_digest_is_refused() -> None:
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/manifests/*", lambda req: (
            200, {"Content-Type": OCI_MANIFEST,
                  "Docker-Content-Digest": str(Digest.of_bytes(b"other"))}, MANIFEST))
        with pytest.raises(RegistryError, match="hashes to"):
            Client(fake.host, "a", environ={}).get_manifest("1")
        with pytest.raises(RegistryError, match="hashes to"):
            Client(fake.host, "a", environ={}).get_manifest(str(Digest.of_bytes(b"other")))


def test_connection_refused_names_the_registry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryError) as err:
        Client(f"127.0.0.1:{port}", "a", environ={}).ping()
    assert f"127.0.0.1:{port}" in err.value.message
    assert "connection refused" in err.value.message.lower()


def test_upload_posts_then_puts_with_the_digest() -> None:
    with serve(FakeServer()) as fake:
        fake.route("POST", "/v2/a/blobs/uploads/", lambda req: (
            202, {"Location": "/v2/a/blobs/uploads/u1?_state=abc"}, b""))
        fake.route("PUT", "/v2/a/blobs/uploads/u1", lambda req: (201, {}, b""))
        d = Digest.of_bytes(b"data")
        Client(fake.host, "a", push=True, environ={}).upload_blob(d, 4, lambda: b"data")
        put = fake.seen[-1]
        assert put.method == "PUT" and put.body == b"data"
        assert "_state=abc" in put.path and f"digest=sha256%3A{d.hex}" in put.path


def test_cross_repository_mount_and_its_upload_fallback() -> None:
    with serve(FakeServer()) as fake:
        def post(req: Seen) -> tuple[int, dict[str, str], bytes]:
            if "from=lib%2Fbase" in req.path:
                return 201, {"Location": "/v2/a/blobs/x"}, b""
            return 202, {"Location": "/v2/a/blobs/uploads/u2"}, b""

        fake.route("POST", "/v2/a/blobs/uploads/", post)
        fake.route("PUT", "/v2/a/blobs/uploads/u2", lambda req: (201, {}, b""))
        d = Digest.of_bytes(b"data")
        client = Client(fake.host, "a", push=True, mount_sources=("lib/base",), environ={})
        assert client.upload_blob(d, 4, lambda: b"data", mount_from="lib/base") is True
        assert [s.method for s in fake.seen] == ["POST"]
        assert f"mount=sha256%3A{d.hex}" in fake.seen[0].path
        # a registry that cannot mount opens an ordinary upload session instead
        assert client.upload_blob(d, 4, lambda: b"data", mount_from="other/repo") is False
        assert [s.method for s in fake.seen] == ["POST", "POST", "PUT"]


def test_a_connection_lost_mid_blob_is_a_registry_error_and_stores_nothing(
        tmp_path: Path) -> None:
    from builder.oci.model import OCI_LAYER_GZIP, Descriptor
    from builder.registry.pull import fetch_blob
    from builder.store import Store

    data = b"\x1f\x8b" + b"x" * 5000
    desc = Descriptor(OCI_LAYER_GZIP, Digest.of_bytes(data), len(data))
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/blobs/*", lambda req: (
            200, {"Content-Length": str(len(data)), "Connection": "close"}, data[:1000]))
        store = Store(tmp_path / "store")
        with pytest.raises(RegistryError) as err:
            fetch_blob(store, Client(fake.host, "a", environ={}), desc)
    assert "connection lost" in err.value.message and fake.host in err.value.message
    assert not store.has_blob(desc.digest)
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


class _Scripted:
    """A stand-in for http.client's connection + response: records what was sent to which
    URL and answers from a script (no TLS server needed to test what we send where)."""

    def __init__(self, log: list[tuple[str, dict[str, str]]], url: str,
                 answer: tuple[int, dict[str, str]]) -> None:
        self.log, self.url, self.answer = log, url, answer

    def request(self, method: str, path: str, body: object = None,
                headers: dict[str, str] | None = None) -> None:
        self.log.append((self.url + path, dict(headers or {})))

    def getresponse(self) -> _Scripted:
        self.status, self.headers = self.answer[0], self.answer[1]
        return self

    def read(self, n: int | None = None) -> bytes:
        return b""

    def close(self) -> None:
        pass


def test_a_redirect_from_https_to_plain_http_does_not_carry_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.parse

    log: list[tuple[str, dict[str, str]]] = []

    def connect(self: Client, url: urllib.parse.SplitResult) -> _Scripted:
        if url.scheme == "https":   # the registry: redirect the blob to http, same host
            return _Scripted(log, f"https://{url.netloc}",
                             (307, {"Location": "http://reg.example/v2/a/blobs/x"}))
        return _Scripted(log, f"http://{url.netloc}", (200, {}))

    monkeypatch.setattr(Client, "_connect", connect)
    client = Client("reg.example", "a", environ={})
    client._auth = "Basic dTpw"
    client.open_blob(Digest.of_bytes(b"x")).close()
    assert [u for u, _ in log] == [f"https://reg.example/v2/a/blobs/{Digest.of_bytes(b'x')}",
                                   "http://reg.example/v2/a/blobs/x"]
    assert log[0][1]["Authorization"] == "Basic dTpw"
    assert "Authorization" not in log[1][1]


def _endless_server(head: bytes, offered: int
                    ) -> tuple[socket.socket, list[int], threading.Thread]:
    """A raw HTTP server answering each connection with `head` and then a chunked body of up
    to `offered` bytes; sent[0] counts what it managed to send before the client hung up.
    Stop it with `_stop(srv, thread)`."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    sent = [0]

    def run() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
                    block = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
                    while sent[0] < offered:
                        conn.sendall(block)
                        sent[0] += 65536
                    conn.sendall(b"0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return srv, sent, thread


def _stop(srv: socket.socket, thread: threading.Thread) -> None:
    with contextlib.suppress(OSError):
        srv.shutdown(socket.SHUT_RDWR)   # wakes the accept() (close alone would not)
    srv.close()
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize("status", [b"307 Temporary Redirect", b"202 Accepted", b"201 Created"])
def test_an_endless_body_where_we_expect_none_is_not_read(status: bytes) -> None:
    """A redirect, an upload session answer and a manifest PUT answer carry no body we need:
    a hostile registry streaming one forever must not be read into memory."""
    srv, sent, thread = _endless_server(b"HTTP/1.1 " + status + b"\r\nLocation: /elsewhere\r\n"
                                b"Docker-Content-Digest: " + str(Digest.of_bytes(b"m")).encode()
                                + b"\r\n", 512 << 20)
    host = f"127.0.0.1:{srv.getsockname()[1]}"
    client = Client(host, "a", push=True, environ={})
    try:
        with pytest.raises(RegistryError):
            if status.startswith(b"307"):
                client.ping()                       # 307 → 307 → … : too many redirects
            elif status.startswith(b"202"):
                client.upload_blob(Digest.of_bytes(b"m"), 1, lambda: b"m")
            else:
                client.put_manifest("t", OCI_MANIFEST, b"other")  # digest differs: refused
    finally:
        _stop(srv, thread)
    assert sent[0] < 64 << 20


def test_namespace_keys_apply_only_to_their_namespace_most_specific_first(
        tmp_path: Path) -> None:
    """containers-auth.json(5): a `host/namespace` key is for images in that namespace, and
    the most specific matching key wins."""
    f = _auth_file(tmp_path / "auth.json", {"quay.io/org-a": "a:pa", "quay.io/org-b": "b:pb",
                                            "quay.io/org-b/app": "app:papp"})
    env = {"REGISTRY_AUTH_FILE": str(f)}
    for repo, user in (("org-a/x", "a"), ("org-b/x", "b"), ("org-b/app", "app"),
                       ("org-b/app/sub", "app"), ("org-bb/x", None), ("other/x", None)):
        creds = lookup("quay.io", env, repo)
        assert (creds.username if creds else None) == user, repo
    g = _auth_file(tmp_path / "auth2.json", {"quay.io": "host:ph", "quay.io/org-b": "b:pb"})
    hosted = lookup("quay.io", {"REGISTRY_AUTH_FILE": str(g)}, "org-a/x")
    assert hosted is not None and hosted.username == "host"
    scoped = lookup("quay.io", {"REGISTRY_AUTH_FILE": str(g)}, "org-b/x")
    assert scoped is not None and scoped.username == "b"


def test_the_client_sends_the_namespace_credentials_of_its_repository(tmp_path: Path) -> None:
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/", lambda req: (
            (200, {}, b"") if req.headers.get("authorization") else
            (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")))
        f = _auth_file(tmp_path / "auth.json", {f"{fake.host}/org-a": "a:pa",
                                                f"{fake.host}/org-b": "b:pb"})
        Client(fake.host, "org-b/app", environ={"REGISTRY_AUTH_FILE": str(f)}).ping()
        assert fake.seen[-1].headers["authorization"] == \
            "Basic " + base64.b64encode(b"b:pb").decode()


def test_a_challenge_from_a_redirect_target_is_not_answered_with_our_credentials(
        tmp_path: Path) -> None:
    """Only the registry's own 401 is answered: a blob host it redirects to (a CDN, or
    whatever a hostile Location names) asking for a Bearer token at a realm of its choosing
    must not receive the registry's credentials there."""
    with serve(FakeServer()) as evil, serve(FakeServer()) as cdn, serve(FakeServer()) as fake:
        evil.route("GET", "/token", lambda req: (200, {}, b'{"token":"t"}'))
        cdn.route("GET", "/blob", lambda req: (
            401, {"WWW-Authenticate": f'Bearer realm="http://{evil.host}/token"'}, b""))
        fake.route("GET", "/v2/a/blobs/*", lambda req: (
            307, {"Location": f"http://{cdn.host}/blob"}, b""))
        f = _auth_file(tmp_path / "auth.json", {fake.host: "u:secret"})
        client = Client(fake.host, "a", environ={"REGISTRY_AUTH_FILE": str(f)})
        with pytest.raises(RegistryError, match="401"):
            client.open_blob(Digest.of_bytes(b"x"))
    assert evil.seen == []


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:abc/x", "http://a b/x"])
def test_a_malformed_url_from_the_registry_is_a_registry_error(url: str) -> None:
    """A Location (redirect, upload session) or a token realm that is not a URL."""
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/blobs/*", lambda req: (307, {"Location": url}, b""))
        fake.route("GET", "/v2/", lambda req: (
            401, {"WWW-Authenticate": f'Bearer realm="{url}"'}, b""))
        fake.route("POST", "/v2/a/blobs/uploads/", lambda req: (202, {"Location": url}, b""))
        client = Client(fake.host, "a", push=True, environ={})
        for call in (lambda: client.open_blob(Digest.of_bytes(b"x")), client.ping,
                     lambda: client.upload_blob(Digest.of_bytes(b"x"), 1, lambda: b"x")):
            with pytest.raises(RegistryError, match="malformed") as err:
                call()
            assert fake.host in err.value.message


def test_deeply_nested_json_in_an_error_or_token_answer_is_a_registry_error() -> None:
    nested = b"[" * 60_000
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/manifests/x", lambda req: (404, {}, nested))
        fake.route("GET", "/token", lambda req: (200, {}, nested))
        fake.route("GET", "/v2/", lambda req: (
            401, {"WWW-Authenticate": f'Bearer realm="http://{fake.host}/token"'}, b""))
        client = Client(fake.host, "a", environ={"REGISTRY_AUTH_FILE": "/none"})
        with pytest.raises(RegistryError, match="HTTP 404"):
            client.get_manifest("x")
        with pytest.raises(RegistryError, match="sent no token"):
            client.ping()
