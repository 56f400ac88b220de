"""Whole-build records: what a finished build depended on, so an unchanged rebuild can be
answered without parsing, planning or solving (the warm-rebuild fast path).

A record is keyed by `request_key` — the Dockerfile bytes, both candidate ignore files, the
resolved build args, target, labels, SOURCE_DATE_EPOCH, the RUN network and platform — and
lists the build's base images (name → manifest digest) and context selections (StepId,
includes, excludes, cache key). It is valid only while every base name still resolves to the
same digest and every context selection still fingerprints to the same key (content, mode,
owner; never mtime), which is exactly when the slow path would find every step cached and
assemble the same image.
Records live in the store's cache (they are CacheRecords with no layer).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.digest import Digest, Fingerprint
from builder.store import CacheRecord, Store

VERSION = "pybuild.buildrecord/v1"


def request_key(*, dockerfile_text: bytes, dockerfile_path: str | None, context: Path,
                build_args: Sequence[tuple[str, str | None]], environ: Mapping[str, str],
                target: str | None, labels: Sequence[tuple[str, str]],
                source_date_epoch: int | None, network: str = "default") -> str:
    """The key of a build request (see the module docstring). Bare `--build-arg K` values are
    taken from `environ`, as the planner does; `network` is `--network` (default = host)."""
    parts: list[str | bytes] = [VERSION, dockerfile_text, platform.machine()]
    candidates = [context / ".dockerignore"]
    if dockerfile_path and dockerfile_path != "-":
        df = Path(dockerfile_path)
        candidates.insert(0, df.with_name(df.name + ".dockerignore"))
    for c in candidates:
        try:
            parts += [str(c), c.read_bytes()]
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            parts += [str(c), "-"]
    for k, v in build_args:
        parts += ["arg", k, v if v is not None else ("env:" + environ.get(k, "\0unset"))]
    parts += ["target", target or "", "sde", "" if source_date_epoch is None
              else str(source_date_epoch)]
    for k, v in labels:
        parts += ["label", k, v]
    parts += ["network", "host" if network in ("default", "host") else network]
    return Fingerprint.of_parts(*parts).hex


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """What a build produced and depended on."""

    manifest: str
    config: str
    images: tuple[tuple[str, str], ...]                       # (name, manifest digest)
    contexts: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...]
    names: tuple[str, ...] = ()                               # cached step names, in order

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "config": self.config,
                "images": [list(i) for i in self.images],
                "contexts": [[s, list(inc), list(exc), k] for s, inc, exc, k in self.contexts],
                "names": list(self.names)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BuildRecord:
        return cls(d["manifest"], d["config"], tuple((a, b) for a, b in d["images"]),
                   tuple((s, tuple(inc), tuple(exc), k) for s, inc, exc, k in d["contexts"]),
                   tuple(d.get("names") or ()))


def save(store: Store, key: str, record: BuildRecord) -> None:
    store.put_cache(CacheRecord(f"build-{key}", None, {"build": record.to_json()}))


def load(store: Store, key: str) -> BuildRecord | None:
    rec = store.get_cache(f"build-{key}")
    if rec is None or "build" not in rec.config:
        return None
    try:
        return BuildRecord.from_json(rec.config["build"])
    except (KeyError, TypeError, ValueError):
        return None


def still_valid(store: Store, record: BuildRecord, context: Path) -> bool:
    """True when the record's image is stored, its base names resolve to the same digests and
    its context selections fingerprint to the same keys."""
    from builder.context import BuildContext
    from builder.executor.cachekey import context_key
    from builder.oci.reference import Transport, parse

    if not store.has_blob(Digest.parse(record.manifest)):
        return False
    for ref_text, digest in record.images:
        try:
            ref = parse(ref_text)
        except ValueError:
            return False
        if ref.transport is not Transport.NAME:
            return False
        current = ref.digest if ref.digest is not None else store.get_image(ref.name)
        if current is None or str(current) != digest:
            return False
    if not os.path.isdir(context):
        return False
    with store.stat_memo() as memo:
        for step_id, includes, excludes, key in record.contexts:
            try:
                prints = BuildContext(context, excludes).fingerprint(includes, memo)
            except (OSError, ValueError):
                return False
            if context_key(step_id, prints) != key:
                return False
    return True
