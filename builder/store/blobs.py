"""Blob I/O for the store: atomic, hashing writers and verifying readers.

BlobWriter streams into a temp file on the store's filesystem, hashing as it goes, and
publishes with rename(2) only after fsync and digest/size checks, so a partial blob is never
visible. VerifiedReader hashes what it reads and raises at EOF when the content does not match
its name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from builder.digest import Digest
from builder.errors import ImageError

CHUNK = 1 << 20


class ReadStream(Protocol):
    """Anything with a bytes `read`: files, tar members, decompressors, VerifiedReader."""

    def read(self, n: int = -1, /) -> bytes: ...


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename into it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Write `data` to `path` atomically (temp + fsync + rename + fsync dir)."""
    tmp_dir = tmp_dir or path.parent
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


class BlobWriter:
    """Stream a blob into the store: hashes while writing, publishes atomically on `commit`.

    Use as a context manager; leaving the block without `commit` (or on an exception)
    discards the temp file, so no partial blob ever becomes visible.
    """

    def __init__(self, tmp_dir: Path, blob_dir: Path, expected: Digest | None = None,
                 expected_size: int | None = None) -> None:
        self._blob_dir = blob_dir
        self._expected = expected
        self._expected_size = expected_size
        fd, tmp = tempfile.mkstemp(prefix="blob-", dir=tmp_dir)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._tmp = Path(tmp)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: Digest | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        if self._expected_size is not None and self.size > self._expected_size:
            raise ImageError(f"blob {self._expected} is larger than its declared size "
                             f"{self._expected_size}")
        return len(data)

    def copy_from(self, src: ReadStream) -> None:
        while block := src.read(CHUNK):
            self.write(block)

    def commit(self) -> Digest:
        """Verify and publish; returns the digest. Raises ImageError on digest/size mismatch."""
        digest = Digest(self._hash.hexdigest())
        if self._expected is not None and digest != self._expected:
            raise ImageError(f"blob digest mismatch: expected {self._expected}, got {digest}",
                             hint="the source is corrupt or was tampered with")
        if self._expected_size is not None and self.size != self._expected_size:
            raise ImageError(f"blob {digest} has size {self.size}, declared "
                             f"{self._expected_size}")
        os.fsync(self._file.fileno())
        self._file.close()
        dest = self._blob_dir / digest.hex
        if dest.exists():
            self._tmp.unlink()
        else:
            os.rename(self._tmp, dest)
            fsync_dir(dest.parent)
        self.digest = digest
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.digest is None:
            self.abort()


class VerifiedReader:
    """A read-only stream over a stored blob that checks its sha256 when it reaches EOF.

    Raises ImageError from `read` at EOF on mismatch. `drain()` reads the rest so a consumer
    that stops early (tar end-of-archive blocks) still gets the verification.
    """

    def __init__(self, path: Path, digest: Digest) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        self._digest = digest
        self._hash = hashlib.sha256()
        self._done = False

    def read(self, n: int = -1, /) -> bytes:
        data = self._f.read(n)
        self._hash.update(data)
        if (not data or n < 0) and not self._done:
            self._done = True
            got = self._hash.hexdigest()
            if got != self._digest.hex:
                raise ImageError(f"blob {self._digest} is corrupt (content hashes to "
                                 f"sha256:{got})", hint="run `pybuild prune` and re-pull or "
                                 "re-build the image")
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
