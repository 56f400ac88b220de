"""Layer stream compression: a block pipeline that hashes and compresses in one pass, and
decompression by magic number.

`BlockSink` cuts the uncompressed stream into fixed BLOCK-sized pieces (so output never
depends on how the input was chunked or on thread timing), hashes each (the diff_id) and hands
it to a `Compressor`, which compresses and writes to `out`, hashing what it writes (the blob
digest). File content is read straight into the block buffer (`write_file`): one copy from the
kernel, none in Python.

gzip is pigz-style parallel deflate: each block is deflated in a thread pool (zlib releases the
GIL) with the previous block's last 32 KiB as its dictionary and ended with a sync flush; the
concatenation plus a final empty block and the CRC-32/ISIZE trailer is one valid gzip member
(RFC 1951/1952). The header is fixed (no name, MTIME 0, OS 255), so output is byte-stable.
zstd uses libzstd's own worker threads (≥ 1, see below) with a content checksum.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol

import pyzstd

from builder.oci.model import Compression
from builder.store import ReadStream

BLOCK = 1 << 20                 # compression block: fixed, so output never depends on timing
GZIP_LEVEL = 6                  # gzip/pigz default
ZSTD_LEVEL = 3                  # zstd CLI default
# One more compression thread than CPUs: the main thread (reading files, tar headers, sha256)
# also needs a share, and pigz gets the same effect by running tar as a separate process.
THREADS = max(2, min(8, (os.cpu_count() or 1) + 1))
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Out(Protocol):
    def write(self, data: Any, /) -> Any: ...


class Compressor:
    """Compresses whole blocks (any size but the last must be BLOCK) and writes them to `out`.

    `hash_output=False` skips hashing the compressed bytes when the caller's sink already
    hashes them (a store BlobWriter does)."""

    def __init__(self, out: Out, compression: Compression, level: int | None = None,
                 threads: int = THREADS, hash_output: bool = True) -> None:
        self.out = out
        self.compression = compression
        self.hash = hashlib.sha256() if hash_output and compression is not Compression.NONE \
            else None
        self.size = 0
        self._threads = threads
        if compression is Compression.GZIP:
            self._level = GZIP_LEVEL if level is None else level
            self._crc = 0
            self._isize = 0
            self._prev_tail = b""
            self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
            self._pending: deque[Future[bytes]] = deque()
            self._emit(GZIP_HEADER)
        elif compression is Compression.ZSTD:
            opts: dict[int, int] = {
                pyzstd.CParameter.compressionLevel: ZSTD_LEVEL if level is None else level,
                pyzstd.CParameter.checksumFlag: 1,
                # Always ≥ 1 worker: multi-threaded zstd output does not depend on the worker
                # count, so the bytes are the same on a 1-core and a 64-core machine (they
                # would differ from single-threaded mode, nbWorkers=0); zstd.h ZSTD_c_nbWorkers.
                pyzstd.CParameter.nbWorkers: max(1, threads),
            }
            self._zstd = pyzstd.ZstdCompressor(opts)

    def _emit(self, data: Any) -> None:
        if len(data):
            if self.hash is not None:
                self.hash.update(data)
            self.out.write(data)
            self.size += len(data)

    @staticmethod
    def _deflate(block: Any, level: int, zdict: bytes) -> bytes:
        c = (zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
             if zdict else zlib.compressobj(level, zlib.DEFLATED, -15))
        return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)

    def block(self, block: memoryview | bytearray) -> None:
        """Compress one block; the caller never modifies `block` afterwards."""
        if self.compression is Compression.NONE:
            self._emit(block)
        elif self.compression is Compression.ZSTD:
            self._emit(self._zstd.compress(block))
        else:
            self._crc = zlib.crc32(block, self._crc)
            self._isize += len(block)
            zdict, self._prev_tail = self._prev_tail, bytes(block[-32768:])
            if self._pool is None:
                self._emit(self._deflate(block, self._level, zdict))
                return
            self._pending.append(self._pool.submit(self._deflate, block, self._level, zdict))
            while len(self._pending) > 2 * self._threads:
                self._emit(self._pending.popleft().result())

    def close(self) -> None:
        if self.compression is Compression.ZSTD:
            self._emit(self._zstd.flush())
        elif self.compression is Compression.GZIP:
            while self._pending:
                self._emit(self._pending.popleft().result())
            if self._pool is not None:
                self._pool.shutdown()
            self._emit(b"\x03\x00")  # a final empty fixed-Huffman block (BFINAL=1)
            self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._isize & 0xFFFFFFFF))

    def abort(self) -> None:
        if self.compression is Compression.GZIP and self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)


class BlockSink:
    """The uncompressed stream: buffers into BLOCK-sized blocks, hashes them (diff_id) and
    feeds the compressor.

    A full block is never written to again (each gets a fresh buffer), so the compressor's
    threads and the hashing thread can read it while the main thread fills the next one:
    sha256 of the tar runs beside the compression instead of before it (hashlib releases
    the GIL). At most `_MAX_PENDING` blocks wait for the hasher, bounding memory."""

    _MAX_PENDING = 4

    def __init__(self, comp: Compressor) -> None:
        self.comp = comp
        self.hash = hashlib.sha256()
        self.size = 0
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="diff-id")
        self._hashing: deque[Future[None]] = deque()
        self._new_buffer()

    def _new_buffer(self) -> None:
        self._buf = bytearray(BLOCK)
        self._mv = memoryview(self._buf)
        self._pos = 0

    def _flush(self) -> None:
        if not self._pos:
            return
        block = self._mv[: self._pos]
        self.size += self._pos
        # One worker thread: updates run in submission order, so the digest is the stream's.
        self._hashing.append(self._hasher.submit(self.hash.update, block))
        while len(self._hashing) > self._MAX_PENDING:
            self._hashing.popleft().result()
        self.comp.block(block)
        self._new_buffer()

    def write(self, data: Any) -> None:
        """Append bytes (headers, padding)."""
        n = len(data)
        off = 0
        while off < n:
            k = min(BLOCK - self._pos, n - off)
            self._mv[self._pos:self._pos + k] = data[off:off + k]
            self._pos += k
            off += k
            if self._pos == BLOCK:
                self._flush()

    def write_file(self, f: io.RawIOBase, size: int) -> int:
        """Read exactly `size` bytes from an unbuffered file straight into the block buffer.
        Returns the number read (less than `size` if the file shrank)."""
        remaining = size
        while remaining:
            k = min(BLOCK - self._pos, remaining)
            n = f.readinto(self._mv[self._pos:self._pos + k])
            if not n:
                break
            self._pos += n
            remaining -= n
            if self._pos == BLOCK:
                self._flush()
        return size - remaining

    def close(self) -> None:
        """Flush, finish the compressor and the diff_id (`hash` is final afterwards)."""
        self._flush()
        try:
            self.comp.close()
        finally:
            self.abort()

    def abort(self) -> None:
        while self._hashing:
            self._hashing.popleft().result()
        self._hasher.shutdown()


@contextlib.contextmanager
def decompressed(raw: ReadStream) -> Iterator[BinaryIO]:
    """A read stream of the uncompressed content, detecting gzip / zstd / plain by magic."""
    head = raw.read(4)
    src: BinaryIO = _Prefixed(head, raw)  # type: ignore[assignment]
    if head[:2] == GZIP_HEADER[:2]:
        with gzip.GzipFile(fileobj=src, mode="rb") as g:
            yield g  # type: ignore[misc]
    elif head == ZSTD_MAGIC:
        with pyzstd.ZstdFile(src, "rb") as z:
            yield z  # type: ignore[misc]
    else:
        yield src


def sniff(head: bytes) -> Compression:
    """The compression a stream starting with `head` (≥ 4 bytes) uses."""
    if head[:2] == GZIP_HEADER[:2]:
        return Compression.GZIP
    if head[:4] == ZSTD_MAGIC:
        return Compression.ZSTD
    return Compression.NONE


class _Prefixed(io.RawIOBase):
    """A stream that first returns `head` then reads from `rest`."""

    def __init__(self, head: bytes, rest: ReadStream) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = len(b)
        if self._head:
            k = min(n, len(self._head))
            b[:k] = self._head[:k]
            self._head = self._head[k:]
            return k
        data = self._rest.read(n)
        b[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if n is None or n < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)
