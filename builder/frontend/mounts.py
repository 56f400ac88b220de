"""RUN --mount values → parsed mount options, as BuildKit's instructions.ParseMount reads them."""

from __future__ import annotations

import csv
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class MountProblem(ValueError):
    """A --mount value is malformed (message as BuildKit's)."""


@dataclass(slots=True)
class ParsedMount:
    """One --mount before its `from` is resolved to a step."""

    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = False
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int | None = None
    env: str = ""


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise MountProblem(f"invalid value for {key}: {value}")


def _size(value: str) -> int:
    # docker/go-units RAMInBytes: a number with an optional b/k/m/g/t/p suffix (binary units).
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    text = value.strip().lower()
    if text.endswith("ib") or (text.endswith("b") and len(text) > 1 and text[-2] in units):
        text = text[:-2] if text.endswith("ib") else text[:-1]
    num = text.rstrip("bkmgtp")
    suffix = text[len(num):]
    try:
        return int(float(num) * units[suffix])
    except (ValueError, KeyError):
        raise MountProblem(f"invalid value for size: {value}") from None


def parse_mount(value: str, expand: Callable[[str], str]) -> ParsedMount:
    """Parse one `--mount=` value (CSV fields `key=value`; `ro`, `rw`, `required` may stand
    alone); every value is variable-expanded with `expand`. Raises MountProblem."""
    fields = next(csv.reader([value], skipinitialspace=False), [])
    m = ParsedMount()
    ro_auto = True
    for fld in fields:
        key, eq, val = fld.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m.readonly, ro_auto = True, False
                continue
            if key in ("readwrite", "rw"):
                m.readonly, ro_auto = False, False
                continue
            if key == "required" and m.type in ("secret", "ssh"):
                m.required = True
                continue
            if key == "required":
                raise MountProblem(f"unexpected key '{key}' for mount type '{m.type}'")
            raise MountProblem(f"invalid field '{fld}' must be a key=value pair")
        val = expand(val)
        if key == "type":
            if val.lower() not in MOUNT_TYPES:
                raise MountProblem(f'unsupported mount type "{val}" '
                                   f"(one of {', '.join(MOUNT_TYPES)})")
            m.type = val.lower()
        elif key == "from":
            m.from_ = val
        elif key in ("source", "src"):
            m.source = val
        elif key in ("target", "dst", "destination"):
            m.target = val
        elif key in ("readonly", "ro"):
            m.readonly, ro_auto = _bool(key, val), False
        elif key in ("readwrite", "rw"):
            m.readonly, ro_auto = not _bool(key, val), False
        elif key == "required":
            if m.type not in ("secret", "ssh"):
                raise MountProblem(f"unexpected key '{key}' for mount type '{m.type}'")
            m.required = _bool(key, val)
        elif key == "id":
            m.id = val
        elif key == "sharing":
            if val and val.lower() not in SHARING:
                raise MountProblem(f'unsupported sharing value "{val}"')
            m.sharing = val.lower()
        elif key in ("mode", "uid", "gid"):
            try:
                number = int(val, 8 if key == "mode" else 10)
            except ValueError:
                raise MountProblem(f"invalid value {val} for {key}") from None
            if number < 0 or number > 0xFFFFFFFF:
                raise MountProblem(f"invalid value {val} for {key}")
            setattr(m, key, number)
        elif key == "env":
            m.env = val
        elif key == "size":
            m.size = _size(val)
        else:
            raise MountProblem(f"unexpected key '{key}' in '{fld}'")
    if m.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(m, name) is not None:
                raise MountProblem(f'{name} not allowed for "{m.type}" type mounts')
    if ro_auto:
        m.readonly = m.type not in ("cache", "tmpfs")
    if m.sharing and m.type != "cache":
        raise MountProblem(f"invalid cache sharing set for {m.type} mount")
    if m.type == "cache" and not m.sharing:
        m.sharing = "shared"
    if m.type == "secret":
        if m.from_:
            raise MountProblem("secret mount should not have a from")
        if not m.source and not m.target and not m.id and not m.env:
            raise MountProblem("invalid secret mount. one of source, target required")
        if not m.id:
            m.id = posixpath.basename(m.source or m.target)
        if not m.target and not m.env:
            m.target = "/run/secrets/" + m.id
    elif m.type == "ssh":
        if m.from_:
            raise MountProblem("ssh mount should not have a from")
        m.id = m.id or "default"
        m.target = m.target or "/run/buildkit/ssh_agent.0"
    # A bind/cache/tmpfs mount without a target mounts at the working directory (BuildKit
    # joins "/", the workdir and the empty target); the caller resolves it, then the cache id.
    return m
