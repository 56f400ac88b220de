"""A tiny in-process HTTP server for tests of our own HTTP logic (auth challenges, token
flow, redirects, hostile answers). Real registries are tested against docker-registry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[Seen], Reply]


@dataclass
class FakeServer:
    """Routes are looked up by (method, path without query), then by method and path prefix
    (longest first); unmatched requests get 404. `seen` records every request."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    host: str = ""

    def route(self, method: str, path: str, fn: Route) -> None:
        self.routes[(method, path)] = fn

    def answer(self, req: Seen) -> Reply:
        path = req.path.split("?", 1)[0]
        fn = self.routes.get((req.method, path))
        if fn is None:
            prefixes = sorted((p for m, p in self.routes if m == req.method and p.endswith("*")
                               and path.startswith(p[:-1])), key=len, reverse=True)
            fn = self.routes.get((req.method, prefixes[0])) if prefixes else None
        if fn is None:
            return 404, {"Content-Type": "application/json"}, \
                b'{"errors":[{"code":"NOT_FOUND","message":"no route"}]}'
        return fn(req)


@contextmanager
def serve(fake: FakeServer, address: str = "127.0.0.1") -> Iterator[FakeServer]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            req = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                       body)
            fake.seen.append(req)
            status, headers, data = fake.answer(req)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = _any  # noqa: N815

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    fake.host = f"{address}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
