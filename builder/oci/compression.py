"""Layer stream compression: a block pipeline that hashes and compresses in one pass, and
decompression by magic number.

`BlockSink` cuts the uncompressed stream into fixed BLOCK-sized pieces (so output never
depends on how the input was chunked or on thread timing) and hands each to a consumer thread
that hashes it (the diff_id) and passes it to a `Compressor`, which compresses and writes to
`out`, hashing what it writes (the blob digest). File content is read straight into recycled
block buffers (`write_fd`): one copy from the kernel, none in Python.

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
import queue
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol

import pyzstd

from builder.oci.model import Compression
from builder.store import ReadStream

BLOCK = 1 << 20                 # compression block: fixed, so output never depends on timing
SEGMENT = 4 * BLOCK             # the sink's hand-off unit: one thread hand-off per 4 MiB
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
    """Compresses the stream, given in pieces whose sizes are multiples of BLOCK (but the
    last), and writes it to `out`. gzip deflates each BLOCK separately (the output depends
    on those boundaries only, not on the pieces); zstd's multi-threaded output depends on
    neither.

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
            self._pending: deque[tuple[Future[bytes], Callable[[], None] | None]] = deque()
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

    def max_held(self, piece: int = BLOCK) -> int:
        """How many pieces of `piece` bytes `block()` may still hold (unreleased) when it
        returns: gzip keeps up to 2 × threads BLOCKs deflating, other forms none."""
        if self.compression is not Compression.GZIP or self._pool is None:
            return 0
        return -(-2 * self._threads * BLOCK // piece) + 1

    def block(self, block: memoryview | bytearray,
              release: Callable[[], None] | None = None) -> None:
        """Compress a piece of the stream (a multiple of BLOCK bytes, unless it is the last).
        The caller does not modify `block` until `release` is called (at once, or for gzip
        once its deflates finished; see `max_held`)."""
        if self.compression is not Compression.GZIP:
            if self.compression is Compression.NONE:
                self._emit(block)
            else:
                # libzstd copies the input into its own job buffers (ZSTD_c_nbWorkers ≥ 1).
                self._emit(self._zstd.compress(block))
            if release is not None:
                release()
            return
        self._crc = zlib.crc32(block, self._crc)
        self._isize += len(block)
        mv = memoryview(block)
        n = len(mv)
        for off in range(0, n, BLOCK):
            sub = mv[off:off + BLOCK]
            zdict, self._prev_tail = self._prev_tail, bytes(sub[-32768:])
            last = off + BLOCK >= n
            if self._pool is None:
                self._emit(self._deflate(sub, self._level, zdict))
                continue
            # The piece is released with its last BLOCK: futures are consumed in order.
            self._pending.append((self._pool.submit(self._deflate, sub, self._level, zdict),
                                  release if last else None))
            while len(self._pending) > 2 * self._threads:
                self._pop()
        if self._pool is None and release is not None:
            release()

    def _pop(self) -> None:
        fut, release = self._pending.popleft()
        data = fut.result()
        if release is not None:
            release()
        self._emit(data)

    def close(self) -> None:
        if self.compression is Compression.ZSTD:
            self._emit(self._zstd.flush())
        elif self.compression is Compression.GZIP:
            while self._pending:
                self._pop()
            if self._pool is not None:
                self._pool.shutdown()
            self._emit(b"\x03\x00")  # a final empty fixed-Huffman block (BFINAL=1)
            self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._isize & 0xFFFFFFFF))

    def abort(self) -> None:
        if self.compression is Compression.GZIP and self._pool is not None:
            for f, _release in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)


class BlockSink:
    """The uncompressed stream: buffers into SEGMENT-sized pieces, hashes them (diff_id) and
    feeds the compressor.

    Two threads, one hand-off per block: the caller's thread encodes headers and reads file
    content straight into the current block buffer; a consumer thread ("layer-sink") hashes
    each full block, compresses it, hashes and writes the output. sha256, zlib and zstd all
    release the GIL, so the consumer's work runs beside the caller's reads instead of after
    them. The threads meet once per SEGMENT (every GIL hand-back can cost a switch interval,
    5 ms, while the other thread runs Python), not once per hash or write. Segments are
    processed strictly in order and are multiples of BLOCK, so the bytes never depend on
    timing. Buffers are recycled through a free list (no per-block allocation and
    page-zeroing) and their number is bounded (`Compressor.max_held` + 3), which bounds
    memory: 12-24 MiB."""

    def __init__(self, comp: Compressor) -> None:
        self.comp = comp
        self.hash = hashlib.sha256()
        self.size = 0
        self._limit = comp.max_held(SEGMENT) + 3  # one filling, one queued, one consumed
        self._allocated = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._jobs: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._consume, name="layer-sink", daemon=True)
        self._thread.start()
        self._new_buffer()

    def _new_buffer(self) -> None:
        if self._allocated < self._limit and self._free.empty():
            self._allocated += 1
            self._buf = bytearray(SEGMENT)
        else:
            self._buf = self._free.get()
        self._mv = memoryview(self._buf)
        self._pos = 0

    def _consume(self) -> None:
        """The consumer thread: hash, compress, emit, in block order; then recycle."""
        while (job := self._jobs.get()) is not None:
            buf, n = job
            if self._error is not None:  # failed earlier: just hand buffers back
                self._free.put(buf)
                continue
            try:
                block = memoryview(buf)[:n]
                self.hash.update(block)
                self.comp.block(block, lambda b=buf: self._free.put(b))  # type: ignore[misc]
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc
                self._free.put(buf)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _flush(self) -> None:
        if not self._pos:
            return
        self._check()
        self.size += self._pos
        self._jobs.put((self._buf, self._pos))
        self._new_buffer()

    def write(self, data: Any) -> None:
        """Append bytes (headers, padding)."""
        n = len(data)
        off = 0
        while off < n:
            k = min(SEGMENT - self._pos, n - off)
            self._mv[self._pos:self._pos + k] = data[off:off + k]
            self._pos += k
            off += k
            if self._pos == SEGMENT:
                self._flush()

    def write_file(self, f: io.RawIOBase, size: int) -> int:
        """Read exactly `size` bytes from an unbuffered file straight into the block buffer.
        Returns the number read (less than `size` if the file shrank)."""
        return self.write_fd(f.fileno(), size)

    def write_fd(self, fd: int, size: int) -> int:
        """`write_file` for a file descriptor (no file object: one syscall per read)."""
        remaining = size
        while remaining:
            k = min(SEGMENT - self._pos, remaining)
            n = os.readv(fd, (self._mv[self._pos:self._pos + k],))
            if not n:
                break
            self._pos += n
            remaining -= n
            if self._pos == SEGMENT:
                self._flush()
        return size - remaining

    def _stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)
            self._thread.join()

    def close(self) -> None:
        """Flush, finish the compressor and the diff_id (`hash` is final afterwards)."""
        self._flush()
        self._stop()
        self._check()
        self.comp.close()

    def abort(self) -> None:
        """Stop the consumer thread (idempotent); call before `Compressor.abort`."""
        self._stop()


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
