"""Where the store lives when `--root` is not given. Kept apart from builder.store, which
imports much more, so the CLI's first tier (builder.buildstamp) can find the store cheaply."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing and collections.abc cost milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_ROOT = "PYBUILD_ROOT"
SYSTEM_ROOT = "/var/lib/pybuild"


def default_root(environ: Mapping[str, str] | None = None, euid: int | None = None) -> str:
    """$PYBUILD_ROOT, else /var/lib/pybuild as root, else $XDG_DATA_HOME/pybuild
    (~/.local/share/pybuild)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_ROOT):
        return env[ENV_ROOT]
    if (os.geteuid() if euid is None else euid) == 0:
        return SYSTEM_ROOT
    xdg = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                   ".local", "share")
    return os.path.join(xdg, "pybuild")


def resolve_root(option: str | os.PathLike[str] | None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The store root for a `--root` option value (None: `default_root`)."""
    return os.fspath(option) if option else default_root(environ)
