"""Small readers shared by rules: image references, RUN mounts, quotes, stage ancestry."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from builder.syntax import nodes as n


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A FROM image as written: `[registry/]name[:tag][@digest]` (no expansion)."""

    registry: str | None
    name: str
    tag: str | None
    digest: str | None


def image_ref(text: str) -> ImageRef:
    rest, _, digest = text.partition("@")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    registry = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    return ImageRef(registry, rest, tag, digest or None)


def unquote(text: str) -> str:
    """Drop one pair of matching surrounding quotes (hadolint's dropQuotes)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text.strip("\"'") if text[:1] in "\"'" or text[-1:] in "\"'" else text


def mounts(ins: n.Instruction) -> list[dict[str, str]]:
    """The `--mount` options of a RUN as key → value maps (`type` defaults to bind)."""
    if not ins.flags:
        return []
    return _mounts(ins.flag_values("mount"))


@lru_cache(maxsize=4096)
def _mounts(values: tuple[str | None, ...]) -> list[dict[str, str]]:
    out = []
    for value in values:
        opts: dict[str, str] = {"type": "bind"}
        for part in (value or "").split(","):
            key, eq, val = part.partition("=")
            key = key.strip().lower()
            if key in ("dst", "destination"):
                key = "target"
            opts[key] = val.strip() if eq else "true"
        out.append(opts)
    return out


def cache_targets(ins: n.Instruction) -> list[str]:
    """Targets of cache and tmpfs mounts: directories whose contents never reach the layer."""
    return [m.get("target", "") for m in mounts(ins) if m.get("type") in ("cache", "tmpfs")]


def has_cache_dir(ins: n.Instruction, directory: str) -> bool:
    """True when a cache/tmpfs mount target starts with `directory` (hadolint's test: a mount
    of an ancestor does not count, e.g. /var/lib/apt for /var/lib/apt/lists)."""
    return any(t.startswith(directory) for t in cache_targets(ins))


def is_variable(text: str) -> bool:
    return unquote(text).startswith("$")


def declared_names(ins: n.Instruction) -> list[str]:
    """The variable names an ARG or ENV instruction declares (none for other instructions)."""
    if isinstance(ins, n.Arg):
        return [d.name for d in ins.decls]
    if isinstance(ins, n.Env):
        return [kv.key for kv in ins.pairs]
    return []
