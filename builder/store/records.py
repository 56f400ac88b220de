"""The store's records: LayerRecord (a layer's blobs per compression), CacheRecord (a cached
build step's result) and PruneReport. Plain data with JSON (de)serialisation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.model import Compression, Descriptor


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One layer, known by its diff_id, and the blobs that hold it per compression.

    `variants` maps a Compression to the descriptor of a blob in the store; at least one is
    present. `size` is the uncompressed tar size.
    """

    diff_id: Digest
    size: int
    variants: Mapping[Compression, Descriptor]

    def best_for_reading(self) -> Descriptor:
        """The cheapest variant to decompress: none, then zstd, then gzip."""
        for c in (Compression.NONE, Compression.ZSTD, Compression.GZIP):
            if c in self.variants:
                return self.variants[c]
        raise ImageError(f"layer {self.diff_id} has no blob")

    def to_json(self) -> dict[str, Any]:
        return {"diff_id": str(self.diff_id), "size": self.size,
                "variants": {c.value: d.to_json() for c, d in sorted(self.variants.items())}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayerRecord:
        return cls(Digest.parse(d["diff_id"]), int(d["size"]),
                   {Compression(k): Descriptor.from_json(v) for k, v in d["variants"].items()})


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """The result of one cached build step, keyed by its cache key (a Fingerprint string).

    `diff_id` names the layer the step produced (None: a config-only step); the layer's blobs
    are found through `Store.get_layer`. `config` is whatever image-config state the executor
    needs to resume after a hit (JSON-able). `blobs` lists any other blobs the record keeps
    alive against `prune`.
    """

    key: str
    diff_id: Digest | None
    config: Mapping[str, Any] = field(default_factory=dict)
    created: str = ""
    blobs: tuple[Digest, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "diff_id": str(self.diff_id) if self.diff_id else None,
                "config": dict(self.config), "created": self.created,
                "blobs": [str(b) for b in self.blobs]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CacheRecord:
        return cls(d["key"], Digest.parse(d["diff_id"]) if d.get("diff_id") else None,
                   dict(d.get("config") or {}), d.get("created", ""),
                   tuple(Digest.parse(b) for b in d.get("blobs") or ()))


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What `Store.prune` removed."""

    blobs: int = 0
    bytes: int = 0
    layer_records: int = 0
    rootfs: int = 0
    cache_records: int = 0
    temp: int = 0
