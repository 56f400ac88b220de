"""Build secrets and SSH agents: what `--secret` and `--ssh` name, resolved only when a RUN
mounts them (`RUN --mount=type=secret|ssh`), never part of a cache key or a layer.

`--secret` follows buildx (`util/buildflags/secrets.go`) and BuildKit's secrets provider:
`id=ID,src=FILE` (also `source=`), `id=ID,env=VAR`, `type=file|env` to say which one `src`
means, `env=VAR` alone (the id is VAR), `id=ID` alone (the environment variable ID when it is
set, else the file ID). `--ssh` follows buildx for agent sockets: `ID=SOCKET[,SOCKET…]` or
`ID` alone ($SSH_AUTH_SOCK); key files (which buildx loads into an agent of its own) are
refused with the fix.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from builder.errors import UsageError


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where one secret's bytes come from: a file (`path`) or an environment variable."""

    id: str
    path: str | None = None
    env: str | None = None

    def read(self, environ: Mapping[str, str]) -> bytes | None:
        """The secret's bytes; None when its variable is unset. Raises OSError for a file
        that cannot be read."""
        if self.env is not None:
            value = environ.get(self.env)
            return value.encode() if value is not None else None
        assert self.path is not None
        with open(self.path, "rb") as f:
            return f.read()


def parse_secret(spec: str, environ: Mapping[str, str]) -> SecretSource:
    """One `--secret` value. Raises UsageError with buildx's wording."""
    typ = ident = path = env = None
    for fld in spec.split(","):
        key, eq, value = fld.partition("=")
        if not eq:
            raise UsageError(f"--secret: invalid field '{fld}' must be a key=value pair",
                             hint="e.g. --secret id=npmrc,src=$HOME/.npmrc or "
                             "--secret id=token,env=API_TOKEN")
        key = key.lower()
        if key == "type":
            if value not in ("file", "env"):
                raise UsageError(f'--secret: unsupported secret type "{value}"',
                                 hint="type=file or type=env")
            typ = value
        elif key == "id":
            ident = value
        elif key in ("src", "source"):
            path = value
        elif key == "env":
            env = value
        else:
            raise UsageError(f"--secret: unexpected key '{key}' in '{fld}'")
    if typ == "env" and env is None:
        env, path = path, None
    ident = ident or env
    if not ident:
        raise UsageError(f"--secret {spec}: secret ID missing", hint="add id=NAME")
    if path is not None and env is not None:
        raise UsageError(f"--secret {spec}: a secret has a file or a variable, not both")
    if path is None and env is None:
        if ident in environ:
            env = ident
        else:
            path = ident
    return SecretSource(ident, path, env)


def parse_ssh(spec: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """One `--ssh` value → (id, agent socket path). Raises UsageError."""
    ident, eq, paths = spec.partition("=")
    if not ident:
        raise UsageError(f"--ssh {spec}: the id is missing", hint="--ssh default or "
                         "--ssh default=$SSH_AUTH_SOCK")
    if not eq:
        sock = environ.get("SSH_AUTH_SOCK", "")
        if not sock:
            raise UsageError(f"--ssh {ident}: SSH_AUTH_SOCK is not set",
                             hint="start an agent (`eval $(ssh-agent)`, `ssh-add`) or pass "
                             f"--ssh {ident}=SOCKET")
        paths = sock
    first = paths.split(",")[0]
    try:
        is_socket = stat.S_ISSOCK(os.stat(first).st_mode)
    except OSError as e:
        raise UsageError(f"--ssh {ident}: cannot use {first}: {e.strerror}") from None
    if not is_socket:
        raise UsageError(f"--ssh {ident}: {first} is not an agent socket",
                         hint="pybuild forwards an SSH agent; load the key into one "
                         f"(`ssh-add {first}`) and pass --ssh {ident}=$SSH_AUTH_SOCK")
    return ident, first
