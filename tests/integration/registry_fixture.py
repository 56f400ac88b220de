"""A real OCI registry for tests: Debian's `docker-registry` (distribution v2) on 127.0.0.1.

`start_registry(tmp)` writes a config (filesystem storage in `tmp`, a free port, optionally
htpasswd Basic auth), starts `docker-registry serve`, waits for ``/v2/`` to answer and returns
a handle whose `stop()` ends exactly that process. The fixtures `registry` (anonymous) and
`auth_registry` (user `tester`, password `s3cret`) wrap it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REGISTRY = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret"


@dataclass
class RunningRegistry:
    """A started registry: `host` is ``127.0.0.1:PORT`` (use it in image names)."""

    host: str
    storage: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bcrypt_htpasswd(user: str, password: str) -> str:
    """An htpasswd line with a bcrypt hash (the only kind distribution accepts), made by the
    C library's crypt(3) through Python's `crypt` module; skips when neither is available."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            pytest.skip("Python's crypt module is gone (3.13+): cannot make a bcrypt htpasswd")
    method = getattr(crypt, "METHOD_BLOWFISH", None)
    if method is None or method not in crypt.methods:
        pytest.skip("this libc's crypt(3) has no bcrypt: cannot make an htpasswd file")
    return f"{user}:{crypt.crypt(password, crypt.mksalt(method))}\n"


def start_registry(tmp: Path, *, basic_auth: bool = False) -> RunningRegistry:
    if not Path(REGISTRY).exists() and shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (Debian package docker-registry)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    auth = ""
    if basic_auth:
        (tmp / "htpasswd").write_text(bcrypt_htpasswd(USER, PASSWORD))
        auth = f"auth:\n  htpasswd:\n    realm: pybuild-test\n    path: {tmp / 'htpasswd'}\n"
    (tmp / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth)
    log = tmp / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([shutil.which("docker-registry") or REGISTRY, "serve",
                                 str(tmp / "config.yml")], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)
    reg = RunningRegistry(f"127.0.0.1:{port}", tmp / "data", proc, log)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=2):
                return reg
        except urllib.error.HTTPError as e:
            if e.code == 401:       # up, and asking for credentials
                return reg
        except OSError:
            pass
        if time.monotonic() > deadline:
            reg.stop()
            raise RuntimeError(f"docker-registry did not answer in 20s: {log.read_text()}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_registry(tmp: Path, *, basic_auth: bool = False) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp, basic_auth=basic_auth)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with running_registry(tmp_path_factory.mktemp("auth-registry"), basic_auth=True) as reg:
        yield reg
