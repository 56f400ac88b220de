"""Registry credentials: where podman, skopeo and docker keep them, and the auth challenge.

Files, first found wins per registry (as containers-auth.json(5) and docker describe them):
``$REGISTRY_AUTH_FILE``; ``${XDG_RUNTIME_DIR}/containers/auth.json``;
``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``). Each has
``{"auths": {KEY: {"auth": base64("user:password")}}}`` where KEY is ``host[:port]``, possibly
with a repository path or a scheme (``https://index.docker.io/v1/`` for Docker Hub).
Credential helpers (``credsStore``, ``credHelpers``) are not run.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.errors import RegistryError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or token) for Basic auth, and the file they came from."""

    username: str
    password: str
    source: str = ""

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def auth_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The credential files to consult, in order (they need not exist)."""
    env = os.environ if environ is None else environ
    if env.get("REGISTRY_AUTH_FILE"):
        return [Path(env["REGISTRY_AUTH_FILE"])]
    out = []
    if env.get("XDG_RUNTIME_DIR"):
        out.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else \
        Path(env.get("HOME") or Path.home()) / ".docker"
    out.append(docker_dir / "config.json")
    return out


def _key_host(key: str) -> str:
    """An `auths` key → the registry host[:port] it is for (drops scheme and path)."""
    key = re.sub(r"^[a-z]+://", "", key)
    return key.split("/", 1)[0]


def _key_namespace(key: str) -> str:
    """The repository namespace of a podman-style `host/namespace` key; '' for a bare host
    and for a URL key (``https://index.docker.io/v1/``), whose path is not a namespace."""
    if re.match(r"^[a-z]+://", key):
        return ""
    return key.partition("/")[2].rstrip("/")


def lookup(domain: str, environ: Mapping[str, str] | None = None,
           repository: str | None = None) -> Credentials | None:
    """Credentials for registry `domain` (as written in image names: docker.io, host:port),
    or None. With `repository`, a `host/namespace` key counts only when the repository is in
    that namespace, the most specific one winning (containers-auth.json(5)); without it,
    any key of the host. A malformed file is a RegistryError naming it."""
    def fits(key: str) -> bool:
        ns = _key_namespace(key)
        return not ns or repository is None or repository == ns or \
            repository.startswith(ns + "/")

    wanted = {domain}
    if domain in _DOCKER_HUB_ALIASES:
        wanted |= set(_DOCKER_HUB_ALIASES)
    for path in auth_files(environ):
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise RegistryError(f"cannot read the registry credentials in {path}: {e}",
                                hint="fix or remove the file") from None
        auths = data.get("auths") if isinstance(data, dict) else None
        if not isinstance(auths, dict):
            continue
        # The most specific namespace first (with a repository), then the exact key (Docker
        # Hub's legacy URL key included), then any other key of the host.
        keys = sorted((k for k in auths if _key_host(k) in wanted and fits(k)),
                      key=lambda k: (-len(_key_namespace(k)) if repository else 0,
                                     k != domain and k != DOCKER_HUB_KEY, k))
        for key in keys:
            entry = auths[key]
            if not isinstance(entry, dict) or not entry.get("auth"):
                continue
            try:
                user, sep, password = base64.b64decode(entry["auth"], validate=True).decode(
                    "utf-8").partition(":")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise RegistryError(f"{path}: auths[{key!r}].auth is not base64 of "
                                    "user:password", hint="log in again") from None
            if not sep:
                raise RegistryError(f"{path}: auths[{key!r}].auth is not base64 of "
                                    "user:password", hint="log in again")
            return Credentials(user, password, str(path))
    return None


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header (RFC 7235): the scheme and its parameters."""

    scheme: str
    params: Mapping[str, str]


_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="…",service="…",scope="…"`` → Challenge; None if unparseable."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2)
        params[m.group(1).lower()] = (re.sub(r"\\(.)", r"\1", value) if value is not None
                                      else m.group(3))
        pos = m.end()
    return Challenge(scheme.lower(), params)
