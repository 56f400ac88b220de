"""Whole-build records: what a finished build depended on, so an unchanged rebuild can be
answered without parsing, planning or solving (the warm-rebuild fast path).

A record is keyed by `buildstamp.request_key` — the Dockerfile bytes, both candidate ignore
files, the resolved build args, target, labels, SOURCE_DATE_EPOCH, the RUN network and
platform — and lists the build's base images (name → manifest digest) and context selections
(StepId, includes, excludes, cache key). It is valid only while every base name still resolves
to the same digest and every context selection still fingerprints to the same key (content,
mode, owner; never mtime), which is exactly when the slow path would find every step cached
and assemble the same image. Records live in the store's cache (they are CacheRecords with no
layer); beside each, its build stamps (builder.buildstamp) answer the commonest case — nothing
on disk touched at all — without even this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder import buildstamp
from builder.digest import Digest
from builder.store import CacheRecord, Store


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """What a build produced and depended on."""

    manifest: str
    config: str
    images: tuple[tuple[str, str], ...]                       # (name, manifest digest)
    contexts: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...]
    names: tuple[str, ...] = ()                               # cached step names, in order
    warnings: tuple[str, ...] = ()                            # rendered, as the build showed

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "config": self.config,
                "images": [list(i) for i in self.images],
                "contexts": [[s, list(inc), list(exc), k] for s, inc, exc, k in self.contexts],
                "names": list(self.names), "warnings": list(self.warnings)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BuildRecord:
        return cls(d["manifest"], d["config"], tuple((a, b) for a, b in d["images"]),
                   tuple((s, tuple(inc), tuple(exc), k) for s, inc, exc, k in d["contexts"]),
                   tuple(d.get("names") or ()), tuple(d.get("warnings") or ()))


def save(store: Store, key: str, record: BuildRecord, context: Path,
         stamps: Mapping[str, buildstamp.Stamp | None], tags: Mapping[str, str]) -> None:
    """Store `record` and its build stamps. `stamps` are those of the context paths the build
    read; `tags` maps each `-t` text to the name it set (already pointing at the image)."""
    store.put_cache(CacheRecord(f"build-{key}", None, {"build": record.to_json()}))
    save_stamps(store, key, record, context, stamps, tags)


def save_stamps(store: Store, key: str, record: BuildRecord, context: Path,
                stamps: Mapping[str, buildstamp.Stamp | None], tags: Mapping[str, str]) -> None:
    """(Re)write the build stamps of `record` (see `save`); removes them when a stamp is not
    settled yet, so the next rebuild takes the content check and stamps again."""
    every: dict[str, buildstamp.Stamp | str | None] = dict(stamps)
    for path in (store.images_file, store.blob_path(Digest.parse(record.manifest))):
        every[str(path)] = buildstamp.content_stamp(str(path))
    answer = {"manifest": record.manifest, "config": record.config, "names": record.names,
              "warnings": record.warnings, "tags": dict(tags)}
    store.put_stamps(key, buildstamp.encode(context, answer, every))


def load(store: Store, key: str) -> BuildRecord | None:
    rec = store.get_cache(f"build-{key}")
    if rec is None or "build" not in rec.config:
        return None
    try:
        return BuildRecord.from_json(rec.config["build"])
    except (KeyError, TypeError, ValueError):
        return None


def still_valid(store: Store, record: BuildRecord, context: Path,
                stamps: dict[str, buildstamp.Stamp | None] | None = None) -> bool:
    """True when the record's image is stored, its base names resolve to the same digests and
    its context selections fingerprint to the same keys. `stamps` (when given) receives the
    stamps of the context paths read on the way."""
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
                ctx = BuildContext(context, excludes)
                prints = ctx.fingerprint(includes, memo)
            except (OSError, ValueError):
                return False
            if stamps is not None:
                stamps.update(ctx.stamps)
            if context_key(step_id, prints) != key:
                return False
    return True
