"""Instruction flags as BuildKit's BFlags checks them: which flags each instruction takes, their
types, and the errors for unknown, duplicate, missing or malformed values."""

from __future__ import annotations

from enum import Enum

from builder.syntax.nodes import Flag, Instruction


class Kind(Enum):
    STRING = "string"
    BOOL = "bool"
    LIST = "list"  # repeatable string flag (--mount, --exclude)


# Flags per instruction (BuildKit frontend/dockerfile/instructions/parse.go, Dockerfile 1.x).
SPECS: dict[str, dict[str, Kind]] = {
    "FROM": {"platform": Kind.STRING},
    "RUN": {"mount": Kind.LIST, "network": Kind.STRING, "security": Kind.STRING,
            "device": Kind.LIST},
    "COPY": {"from": Kind.STRING, "chown": Kind.STRING, "chmod": Kind.STRING,
             "link": Kind.BOOL, "parents": Kind.BOOL, "exclude": Kind.LIST},
    "ADD": {"chown": Kind.STRING, "chmod": Kind.STRING, "link": Kind.BOOL,
            "keep-git-dir": Kind.BOOL, "checksum": Kind.STRING, "exclude": Kind.LIST,
            "unpack": Kind.BOOL},
    "HEALTHCHECK": {"interval": Kind.STRING, "timeout": Kind.STRING,
                    "start-period": Kind.STRING, "start-interval": Kind.STRING,
                    "retries": Kind.STRING},
}


class FlagProblem(Exception):
    """A flag is wrong; `flag` is the offending one (for its span)."""

    def __init__(self, message: str, flag: Flag) -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_flags(inst: Instruction, keyword: str | None = None) -> dict[str, object]:
    """Validate `inst.flags` for its instruction and return their values by name (strings,
    booleans, or tuples for list flags). Missing flags are absent from the result.
    Raises FlagProblem with BuildKit's message."""
    spec = SPECS.get(keyword or inst.keyword, {})
    out: dict[str, object] = {}
    seen: set[str] = set()
    for f in inst.flags:
        kind = spec.get(f.name)
        if kind is None:
            raise FlagProblem(f"unknown flag: --{f.name}", f)
        if f.name in seen and kind is not Kind.LIST:
            raise FlagProblem(f"duplicate flag specified: --{f.name}", f)
        seen.add(f.name)
        if kind is Kind.BOOL:
            if f.value is None:
                out[f.name] = True
            elif f.value in _TRUE:
                out[f.name] = True
            elif f.value in _FALSE:
                out[f.name] = False
            else:
                raise FlagProblem(
                    f"expecting boolean value for flag --{f.name}, not: {f.value}", f)
        elif f.value is None:
            raise FlagProblem(f"missing a value on flag: --{f.name}", f)
        elif kind is Kind.LIST:
            prev = out.get(f.name, ())
            assert isinstance(prev, tuple)
            out[f.name] = (*prev, f.value)
        else:
            out[f.name] = f.value
    return out
