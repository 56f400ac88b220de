"""HTTP(S) to one repository of an OCI distribution registry: the network chokepoint.

Speaks the distribution spec v2 (https://github.com/opencontainers/distribution-spec/blob/main/
spec.md) with the standard library only: manifests and blobs (GET/HEAD), blob uploads
(POST + monolithic PUT ``?digest=``), manifest PUT. Auth: anonymous first; on a 401 the
``WWW-Authenticate`` challenge picks the Bearer token flow (distribution's token spec: GET the
realm with ``service`` and ``scope``, use ``token`` or ``access_token``) or Basic, with
credentials from builder.registry.auth. TLS is verified; plain HTTP only for loopback hosts
and ``$PYBUILD_INSECURE_REGISTRIES``. Every failure is a RegistryError saying which registry
and reference, what the registry answered (status, error code and message) and what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

from builder.digest import Digest
from builder.errors import RegistryError
from builder.oci.model import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from builder.registry.auth import Credentials, lookup, parse_challenge

ENV_INSECURE = "PYBUILD_INSECURE_REGISTRIES"
ENV_TIMEOUT = "PYBUILD_REGISTRY_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
# Every manifest kind we can read, OCI first (what `docker pull` and containerd send).
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
MANIFEST_MAX = 4 << 20        # the distribution spec's recommended manifest size limit
_ERROR_BODY_MAX = 64 << 10
_MAX_REDIRECTS = 5
_BLOCK = 1 << 20              # upload chunk size (http.client's default 8 KiB costs CPU)
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]", "::1")
_HINTS = {
    401: "log in: write credentials for {host} to ~/.docker/config.json (or the file in "
         "$REGISTRY_AUTH_FILE), as `docker login`, `podman login` or `skopeo login` do",
    403: "the credentials in use may not {action} {repo}; check them and the repository's "
         "permissions",
    404: "check the name, the tag or digest, and the registry",
    429: "the registry is rate-limiting: wait, or log in for a higher limit",
}


def registry_host(domain: str) -> str:
    """The host[:port] to talk to for an image-name domain (docker.io → its API host)."""
    return DOCKER_HUB_HOST if domain in (DOCKER_HUB, "index.docker.io") else domain


def _split_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        return host + "]", rest.removeprefix(":")
    host, _, port = hostport.partition(":")
    return host, port


def is_insecure(hostport: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when `hostport` is spoken to over plain HTTP: loopback hosts, and the entries of
    $PYBUILD_INSECURE_REGISTRIES (comma-separated host[:port]; a bare host allows any port)."""
    env = os.environ if environ is None else environ
    host, port = _split_port(hostport)
    if host.lower() in _LOOPBACK:
        return True
    for entry in (env.get(ENV_INSECURE) or "").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        ehost, eport = _split_port(entry)
        if ehost == host.lower() and (not eport or eport == port):
            return True
    return False


def _timeout(environ: Mapping[str, str]) -> float:
    try:
        return float(environ.get(ENV_TIMEOUT) or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


class Response:
    """An HTTP response whose body is read as a stream; close() also closes its connection."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 url: str, lost: Callable[[str], RegistryError]) -> None:
        self._conn = conn
        self._resp = resp
        self._lost = lost
        self.status = resp.status
        self.headers = resp.headers
        self.url = url

    def read(self, n: int = -1, /) -> bytes:
        """Read the body; a dropped connection or a timeout is a RegistryError."""
        try:
            return self._resp.read(None if n < 0 else n)
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise self._lost(f"connection lost while reading from {self.url}: "
                             f"{e or type(e).__name__}") from None

    def read_limited(self, limit: int) -> bytes:
        """The whole body, refusing more than `limit` bytes (a document, not a layer)."""
        data = self.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"more than {limit} bytes")
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._resp.close()
        self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class ManifestData:
    """A manifest or index as the registry served it: raw bytes, media type, digest."""

    data: bytes
    media_type: str
    digest: Digest


BodyFactory = Callable[[], IO[bytes] | bytes]


class Client:
    """One repository on one registry (`domain` as in image names, `repository` the path,
    e.g. ``library/busybox``). `push=True` asks for push as well as pull rights, and
    `mount_sources` for pull rights on the repositories blobs may be mounted from.

    Thread-safe: layers may be fetched in parallel; the token is shared."""

    def __init__(self, domain: str, repository: str, *, push: bool = False,
                 mount_sources: tuple[str, ...] = (),
                 environ: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.domain = domain
        self.repository = repository
        self.host = registry_host(domain)
        self.scheme = "http" if is_insecure(self.host, self.environ) else "https"
        self.base = f"{self.scheme}://{self.host}"
        self.action = "pull,push" if push else "pull"
        # repositories we may mount blobs from: the token asks to pull them too
        self.mount_sources = tuple(r for r in mount_sources if r != repository)
        self.timeout = _timeout(self.environ)
        self._ssl = ssl_context
        self._auth: str | None = None          # the Authorization header once we have one
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._lock = threading.Lock()

    # --- naming for messages -----------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"{self.domain}/{self.repository}"

    def error(self, what: str, detail: str, hint: str | None = None) -> RegistryError:
        """A RegistryError naming this registry, `what` was asked and of which repository."""
        return RegistryError(f"registry {self.host}: {what} {self.where}: {detail}", hint=hint)

    # --- low level ---------------------------------------------------------------------------
    def _connect(self, url: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        if url.scheme == "https":
            ctx = self._ssl or ssl.create_default_context()
            return http.client.HTTPSConnection(url.netloc, timeout=self.timeout, context=ctx,
                                               blocksize=_BLOCK)
        if url.scheme == "http":
            return http.client.HTTPConnection(url.netloc, timeout=self.timeout,
                                              blocksize=_BLOCK)
        raise RegistryError(f"registry {self.host}: unsupported URL scheme in {url.geturl()}")

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: BodyFactory | None,
              what: str, auth_host: str | None = None) -> Response:
        """One request, following redirects (303/307/308 …) up to 5 times. The Authorization
        header goes only to the registry's own host: a blob redirect to a CDN or object store
        carries its own signed URL (as docker and containerd do)."""
        for _ in range(_MAX_REDIRECTS + 1):
            parts = self._split(url, what)
            send = dict(headers)
            # ... and never over plain HTTP to a host not allowed it (a redirect from https
            # to http on the same host would otherwise send the password or token in clear)
            if parts.netloc != (auth_host or self.host) or (
                    parts.scheme != "https" and not is_insecure(parts.netloc, self.environ)):
                send.pop("Authorization", None)
            try:
                conn = self._connect(parts)
            except http.client.InvalidURL as e:   # a bad port in a Location or a realm
                raise self.error(what, f"the registry sent a malformed URL {url[:200]!r}: {e}"
                                 ) from None
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                payload = body() if body is not None else None
                try:
                    conn.request(method, path or "/", body=payload, headers=send)
                    resp = conn.getresponse()
                finally:
                    if payload is not None and not isinstance(payload, bytes):
                        payload.close()
            except (ssl.SSLError, ssl.CertificateError) as e:
                conn.close()
                raise self.error(what, f"TLS failed talking to {parts.netloc}: {e}",
                                  hint=f"if the registry serves plain HTTP, list "
                                  f"{self.host} in ${ENV_INSECURE}; if its certificate is "
                                  "private, point SSL_CERT_FILE at its CA") from None
            except TimeoutError:
                conn.close()
                raise self.error(what, f"{parts.netloc} did not answer within "
                                  f"{self.timeout:g}s",
                                  hint=f"check the network; raise ${ENV_TIMEOUT}") from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                reason = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                          ) or type(e).__name__
                raise self.error(what, f"cannot reach {parts.scheme}://{parts.netloc}: "
                                  f"{reason[:1].lower() + reason[1:]}",
                                  hint="check the registry name and port, and that it is "
                                  "running and reachable") from None
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                conn.close()   # unread: a redirect's body is not needed (and may be endless)
                try:
                    url = urllib.parse.urljoin(url, resp.headers["Location"])
                except ValueError:
                    raise self.error(what, "the registry redirected to a malformed URL "
                                     f"{resp.headers['Location'][:200]!r}") from None
                if resp.status == 303:
                    method, body = "GET", None
                continue
            return Response(conn, resp, url, lambda detail: self.error(what, detail))
        raise self.error(what, f"more than {_MAX_REDIRECTS} redirects")

    def _split(self, url: str, what: str) -> urllib.parse.SplitResult:
        """urlsplit, a malformed URL (from a Location header or a token realm: the
        registry's words) being a RegistryError."""
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as e:
            raise self.error(what, f"the registry sent a malformed URL {url[:200]!r}: {e}"
                             ) from None
        return parts

    def _credentials(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds = lookup(self.domain, self.environ, self.repository)
            self._creds_loaded = True
        return self._creds

    def _authenticate(self, header: str, what: str) -> bool:
        """Answer a 401's challenge; True when we now have something new to send."""
        challenge = parse_challenge(header)
        if challenge is None:
            return False
        creds = self._credentials()
        if challenge.scheme == "basic":
            if creds is None:
                return False
            new = creds.basic()
        elif challenge.scheme == "bearer":
            new = "Bearer " + self._token(challenge.params, creds, what)
        else:
            return False
        if new == self._auth:
            return False
        self._auth = new
        return True

    def _token(self, params: Mapping[str, str], creds: Credentials | None, what: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise self.error(what, "the registry asked for a Bearer token without a realm")
        query = []
        if params.get("service"):
            query.append(("service", params["service"]))
        scope = f"repository:{self.repository}:{self.action}"
        query.append(("scope", scope))
        query += [("scope", f"repository:{r}:pull") for r in self.mount_sources]
        if params.get("scope") and params["scope"] != scope:
            query.append(("scope", params["scope"]))
        sep = "&" if "?" in realm else "?"
        url = realm + sep + urllib.parse.urlencode(query)
        rparts = self._split(url, what)
        headers = {"User-Agent": "pybuild"}
        # Credentials go to the token server only over TLS (or to a loopback/insecure host).
        if creds is not None and (rparts.scheme == "https" or is_insecure(rparts.netloc,
                                                                          self.environ)):
            headers["Authorization"] = creds.basic()
        resp = self._send("GET", url, headers, None, what, auth_host=rparts.netloc)
        with resp:
            body = resp.read(_ERROR_BODY_MAX)
        if resp.status != 200:
            hint = _HINTS[401].format(host=self.domain) if resp.status in (401, 403) else None
            raise self.error(what, f"the token server {rparts.netloc} refused: HTTP "
                              f"{resp.status}{_describe(body)}", hint=hint)
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError, RecursionError):
            token = None
        if not isinstance(token, str) or not token:
            raise self.error(what, f"the token server {rparts.netloc} sent no token")
        return token

    def request(self, method: str, path: str, what: str, *,
                headers: Mapping[str, str] | None = None, body: BodyFactory | None = None,
                ok: tuple[int, ...] = (200,)) -> Response:
        """`method` on ``base + path`` (or an absolute URL), authenticating on a 401 once;
        a status outside `ok` (and 404 unless listed) is a RegistryError."""
        url = path if "://" in path else self.base + path
        for attempt in range(2):
            send = {"User-Agent": "pybuild", **(headers or {})}
            with self._lock:
                auth = self._auth
            if auth:
                send["Authorization"] = auth
            resp = self._send(method, url, send, body, what)
            # Only the registry's own challenge is answered: a host it redirected to (a blob
            # store, or whatever a hostile Location names) could otherwise pick a token realm
            # and receive the registry's credentials there.
            if resp.status == 401 and attempt == 0 and \
                    urllib.parse.urlsplit(resp.url).netloc == self.host:
                challenge = resp.headers.get("WWW-Authenticate", "")
                try:
                    with self._lock:
                        # another thread may have authenticated meanwhile
                        renewed = self._auth != auth or self._authenticate(challenge, what)
                except BaseException:
                    resp.close()
                    raise
                if renewed:
                    resp.read(_ERROR_BODY_MAX)
                    resp.close()
                    continue
            if resp.status in ok:
                return resp
            raise self.status_error(resp, what)
        raise AssertionError("unreachable")

    def status_error(self, resp: Response, what: str) -> RegistryError:
        """A RegistryError for an unexpected status, with the registry's error code."""
        body = b""
        if resp.status >= 300:
            with contextlib.suppress(RegistryError):
                body = resp.read(_ERROR_BODY_MAX)
        resp.close()
        hint = _HINTS.get(resp.status)
        if hint:
            hint = hint.format(host=self.domain, repo=self.where,
                               action="push to" if "push" in self.action else "pull")
        creds = self._credentials() if resp.status == 401 else None
        if creds is not None:
            hint = f"the credentials for {self.domain} in {creds.source} were refused; log in again"
        elif resp.status >= 500:
            hint = "the registry failed; try again later"
        return self.error(what, f"HTTP {resp.status}{_describe(body)}", hint=hint)

    # --- the distribution API ----------------------------------------------------------------
    def ping(self) -> None:
        """``GET /v2/``: the registry speaks the API (a 401 challenge is answered)."""
        self.request("GET", "/v2/", "check").close()

    def get_manifest(self, reference: str) -> ManifestData:
        """A manifest or index by tag or digest, verified against a digest reference (or the
        ``Docker-Content-Digest`` header for a tag)."""
        what = f"get manifest {reference} of"
        with self.request("GET", f"/v2/{self.repository}/manifests/{reference}", what,
                          headers={"Accept": MANIFEST_ACCEPT}) as resp:
            try:
                data = resp.read_limited(MANIFEST_MAX)
            except ValueError:
                raise self.error(what, f"the manifest is larger than {MANIFEST_MAX} bytes"
                                  ) from None
            media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
            header_digest = resp.headers.get("Docker-Content-Digest")
        digest = Digest.of_bytes(data)
        expect = None
        if reference.startswith("sha256:"):
            expect = reference
        elif header_digest and header_digest.startswith("sha256:"):
            expect = header_digest
        if expect is not None and str(digest) != expect:
            raise self.error(what, f"the manifest served hashes to {digest}, not {expect}",
                              hint="the registry (or something between) is corrupt or "
                              "hostile; nothing was stored")
        return ManifestData(data, media_type, digest)

    def has_blob(self, digest: Digest) -> bool:
        """``HEAD /v2/<name>/blobs/<digest>``: 200 → True, 404 → False."""
        resp = self.request("HEAD", f"/v2/{self.repository}/blobs/{digest}",
                            f"check blob {digest.short} in", ok=(200, 404))
        resp.close()
        return resp.status == 200

    def open_blob(self, digest: Digest) -> Response:
        """Stream a blob (redirects followed). The caller verifies and closes."""
        return self.request("GET", f"/v2/{self.repository}/blobs/{digest}",
                            f"get blob {digest.short} of")

    def upload_blob(self, digest: Digest, size: int, body: BodyFactory,
                    mount_from: str | None = None) -> bool:
        """POST an upload session, then one monolithic ``PUT <location>?digest=``. With
        `mount_from` (another repository of this registry that has the blob), ask for a
        cross-repository mount first: 201 means done without sending a byte; a 202 is an
        ordinary upload session (the spec's fallback). Returns True when mounted."""
        what = f"upload blob {digest.short} to"
        path = f"/v2/{self.repository}/blobs/uploads/"
        if mount_from:
            path += "?" + urllib.parse.urlencode({"mount": str(digest), "from": mount_from})
        with self.request("POST", path, what, headers={"Content-Length": "0"},
                          ok=(201, 202)) as resp:
            location = resp.headers.get("Location")   # the body is not needed: left unread
        if resp.status == 201:
            return True
        if not location:
            raise self.error(what, "the registry sent no upload Location")
        try:
            url = urllib.parse.urljoin(self.base + "/", location)
        except ValueError:
            raise self.error(what, f"the registry sent a malformed upload Location "
                             f"{location[:200]!r}") from None
        parts = self._split(url, what)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query.append(("digest", str(digest)))
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        self.request("PUT", url, what, body=body,
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Length": str(size)}, ok=(201, 204)).close()
        return False

    def put_manifest(self, reference: str, media_type: str, data: bytes) -> Digest:
        """PUT a manifest or index under a tag (or its digest); returns its digest."""
        what = f"push manifest {reference} to"
        with self.request("PUT", f"/v2/{self.repository}/manifests/{reference}", what,
                          headers={"Content-Type": media_type,
                                   "Content-Length": str(len(data))},
                          body=lambda: data, ok=(200, 201, 202)) as resp:
            got = resp.headers.get("Docker-Content-Digest")
        digest = Digest.of_bytes(data)
        if got and got != str(digest):
            raise self.error(what, f"the registry stored it as {got}, not {digest}")
        return digest


def _describe(body: bytes) -> str:
    """The registry's error codes and messages from a JSON error body (distribution spec
    "Error Codes"), as ': CODE: message'; '' when the body has none."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""
    if not isinstance(doc, dict):
        return ""
    errs = doc.get("errors")
    if isinstance(errs, list) and errs:
        parts = []
        for e in errs[:3]:
            if isinstance(e, dict):
                code, msg = str(e.get("code") or ""), str(e.get("message") or "")
                parts.append(": ".join(p for p in (code, msg) if p))
        text = "; ".join(p for p in parts if p)
        return f": {text}" if text else ""
    for key in ("details", "error", "message"):
        if isinstance(doc.get(key), str):
            return f": {doc[key]}"
    return ""


# --- plain URLs (ADD <url>) ---------------------------------------------------------------------
ENV_FETCH_MAX = "PYBUILD_FETCH_MAX_BYTES"
FETCH_MAX = 8 << 30           # 8 GiB: a remote file larger than this is refused (a runaway body)


def fetch_max(environ: Mapping[str, str] | None = None) -> int:
    """The largest body `open_url` callers accept: $PYBUILD_FETCH_MAX_BYTES, else 8 GiB."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get(ENV_FETCH_MAX) or FETCH_MAX)
    except ValueError:
        return FETCH_MAX


def redact(url: str) -> str:
    """`url` fit for messages: a password in its userinfo is replaced by ``xxxxx`` (as Go's
    URL.Redacted does)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:xxxxx@" + parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def open_url(url: str, *, headers: Mapping[str, str] | None = None,
             environ: Mapping[str, str] | None = None,
             ssl_context: ssl.SSLContext | None = None) -> Response:
    """``GET url`` for a file outside any registry (ADD <url>), returned as a stream.

    http and https only; TLS verified; redirects followed up to 5 times, http→https allowed
    but never https→http (a downgrade) nor to another scheme. Credentials in the URL
    (``https://user:pass@host/…``) are sent as Basic auth to that host and port only, never
    across a redirect elsewhere, and never shown in messages. The answer is returned for a 200
    or a 304 (the caller sent `If-None-Match`/`If-Modified-Since` in `headers`); any other
    status, a refused connection, a TLS failure or a timeout is a RegistryError naming the URL.
    The caller reads the body (Response.read) and closes it."""
    env = dict(os.environ if environ is None else environ)
    timeout = _timeout(env)
    shown = redact(url)
    first = urllib.parse.urlsplit(url)
    origin = (first.scheme, first.hostname, first.port)
    auth = None
    if first.username is not None:
        auth = Credentials(urllib.parse.unquote(first.username),
                           urllib.parse.unquote(first.password or ""), "the URL").basic()
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(current)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if parts.scheme not in ("http", "https") or not host:
            raise RegistryError(f"GET {shown}: unsupported URL {redact(current)!r}",
                                hint="only http:// and https:// URLs can be downloaded")
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout,
                context=ssl_context or ssl.create_default_context(), blocksize=_BLOCK)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout, blocksize=_BLOCK)
        send = {"User-Agent": "pybuild", "Accept-Encoding": "identity", **(headers or {})}
        if auth is not None and (parts.scheme, host, port) == origin:
            send["Authorization"] = auth
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        try:
            conn.request("GET", path, headers=send)
            resp = conn.getresponse()
        except (ssl.SSLError, ssl.CertificateError) as e:
            conn.close()
            raise RegistryError(f"GET {shown}: TLS failed talking to {where}: {e}",
                                hint="if the certificate is private, point SSL_CERT_FILE at "
                                "its CA") from None
        except TimeoutError:
            conn.close()
            raise RegistryError(f"GET {shown}: {where} did not answer within {timeout:g}s",
                                hint=f"check the network; raise ${ENV_TIMEOUT}") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            reason = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                      ) or type(e).__name__
            raise RegistryError(f"GET {shown}: cannot reach {where}: "
                                f"{reason[:1].lower() + reason[1:]}",
                                hint="check the URL, and that the server is running and "
                                "reachable") from None
        if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
            nxt = urllib.parse.urljoin(current, resp.headers["Location"])
            with contextlib.suppress(OSError, http.client.HTTPException):
                resp.read(_ERROR_BODY_MAX)
            conn.close()
            scheme = urllib.parse.urlsplit(nxt).scheme
            if scheme not in ("http", "https"):
                raise RegistryError(f"GET {shown}: redirected to {redact(nxt)}: unsupported "
                                    f"URL scheme {scheme!r}", hint="only http:// and "
                                    "https:// URLs can be downloaded")
            if parts.scheme == "https" and scheme == "http":
                raise RegistryError(f"GET {shown}: redirected from https to plain http "
                                    f"({redact(nxt)}); refused",
                                    hint="use the http:// URL directly if you trust it")
            current = nxt
            continue
        if resp.status in (200, 304):
            return Response(conn, resp, current,
                            lambda detail: RegistryError(f"GET {shown}: {detail}"))
        with contextlib.suppress(OSError, http.client.HTTPException):
            resp.read(_ERROR_BODY_MAX)
        conn.close()
        reason = f" {resp.reason}" if resp.reason else ""
        raise RegistryError(f"GET {shown}: HTTP {resp.status}{reason}",
                            hint="check the URL" if resp.status == 404 else
                            "check the credentials in the URL" if resp.status in (401, 403)
                            else "the server failed; try again later" if resp.status >= 500
                            else None)
    raise RegistryError(f"GET {shown}: more than {_MAX_REDIRECTS} redirects")
