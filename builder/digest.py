"""Content identities: Digest (sha256, names every blob) and Fingerprint (xxh3, internal only).

A Fingerprint is never written where an OCI digest is expected.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """An OCI content digest. Only sha256 is supported (the OCI default)."""

    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse "sha256:<64 hex>"; raises ValueError on anything else."""
        m = _DIGEST_RE.match(text)
        if not m:
            raise ValueError(f"not a sha256 digest: {text!r}")
        return cls(m.group(1))

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    @classmethod
    def of_file(cls, f: BinaryIO, chunk: int = 1 << 20) -> Digest:
        h = hashlib.sha256()
        while block := f.read(chunk):
            h.update(block)
        return cls(h.hexdigest())

    @property
    def algorithm(self) -> str:
        return "sha256"

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"sha256:{self.hex}"


@dataclass(frozen=True, slots=True, order=True)
class Fingerprint:
    """An xxh3-128 identity of internal things (cache keys, file contents). Hex string."""

    hex: str

    @classmethod
    def of_bytes(cls, data: bytes) -> Fingerprint:
        import xxhash

        return cls(xxhash.xxh3_128_hexdigest(data))

    @classmethod
    def of_parts(cls, *parts: str | bytes) -> Fingerprint:
        """Hash a sequence of parts unambiguously (each part is length-prefixed)."""
        import xxhash

        h = xxhash.xxh3_128()
        for part in parts:
            b = part.encode() if isinstance(part, str) else part
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return cls(h.hexdigest())

    def __str__(self) -> str:
        return self.hex
