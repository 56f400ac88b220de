"""Build stamps: the stamps of everything a finished build read, so that an unchanged rebuild
is answered before anything else of pybuild is imported (the CLI's first tier).

A stat stamp is a path's lstat fields — type and mode, inode, device, size, mtime, ctime,
owner — or None for "absent"; a content stamp is the xxh3 of a small file's bytes. A build's
stamp file (next to its build record in the store's cache) holds its answer (manifest and
config digests, step names, warnings, the tags that pointed at the image), stat stamps of every
context entry and directory its COPY/ADD selections read (builder.context), and content stamps
of the store's images.json and of the image's manifest. The answer stands while every stamp is
unchanged: a file cannot change content, mode or owner without a new ctime, a directory cannot
gain or lose an entry without a new mtime, and no tag can move without changing images.json.

Stat stamps are kept only once settled: a path changed within SETTLE_NS of being stamped could
change again inside the same timestamp tick and look the same (git's "racily clean" entries).
No stamp file, another format or one differing stamp means "not known here"; the caller goes
on to the build record's content check (builder.buildrecord), which is always right.

Imports only os, marshal, time and xxhash: this runs before the CLI is imported.
"""

from __future__ import annotations

import marshal
import os
import time

from builder import __version__

TYPE_CHECKING = False  # typing and collections.abc cost milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FORMAT = "pybuild.buildstamp/v1"
SETTLE_NS = 2_000_000_000  # coarser than any filesystem's timestamp granularity we meet

Stamp = tuple[int, int, int, int, int, int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
            st.st_uid, st.st_gid)


def stamp(path: str) -> Stamp | None:
    """The stamp of `path` (not following a final symlink), None when it does not exist."""
    try:
        return stamp_of(os.lstat(path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def content_stamp(path: str) -> str | None:
    """The content stamp of a small file (xxh3-128 hex of its bytes), None when absent."""
    import xxhash

    try:
        with open(path, "rb") as f:
            return xxhash.xxh3_128_hexdigest(f.read())
    except (FileNotFoundError, NotADirectoryError):
        return None


def settled(s: Stamp | str | None, now_ns: int | None = None) -> bool:
    """True when stat stamp `s` last changed more than SETTLE_NS before `now_ns` (default:
    now); content stamps and absences always are."""
    if not isinstance(s, tuple):
        return True
    now = time.time_ns() if now_ns is None else now_ns
    return max(s[4], s[5]) < now - SETTLE_NS


def request_key(*, dockerfile_text: bytes, dockerfile_path: str | None, context: str,
                build_args: Sequence[tuple[str, str | None]], environ: Mapping[str, str],
                target: str | None, labels: Sequence[tuple[str, str]],
                source_date_epoch: int | None, network: str = "default") -> str:
    """The key of a build request: everything a build depends on besides its context and base
    images — the Dockerfile bytes, both candidate ignore files, the resolved build args (a bare
    `--build-arg K` reads `environ`, as the planner does), target, labels, SOURCE_DATE_EPOCH,
    the RUN network (`default` is `host`), the machine and this pybuild's version."""
    import xxhash

    h = xxhash.xxh3_128()

    def part(p: str | bytes) -> None:  # length-prefixed, so parts can never run together
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)

    for p in (FORMAT, __version__, os.uname().machine, dockerfile_text):
        part(p)
    candidates = {"context": os.path.join(context, ".dockerignore")}
    if dockerfile_path and dockerfile_path != "-":
        candidates["dockerfile"] = dockerfile_path + ".dockerignore"
    for role, c in candidates.items():  # by role: where the checkout lies does not matter
        part(role)
        try:
            with open(c, "rb") as f:
                part(f.read())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            part("-")
    for k, v in build_args:
        for p in ("arg", k, v if v is not None else ("env:" + environ.get(k, "\0unset"))):
            part(p)
    for p in ("target", target or "", "sde",
              "" if source_date_epoch is None else str(source_date_epoch)):
        part(p)
    for k, v in labels:
        for p in ("label", k, v):
            part(p)
    for p in ("network", "host" if network in ("default", "host") else network):
        part(p)
    return h.hexdigest()


def file_path(root: str | os.PathLike[str], key: str) -> str:
    """Where the stamp file of request `key` lives in the store at `root`."""
    return os.path.join(root, "cache", key[:2], f"build-{key}.stamps")


def encode(context: str | os.PathLike[str], answer: Mapping[str, object],
           stamps: Mapping[str, Stamp | str | None], now_ns: int | None = None
           ) -> bytes | None:
    """The bytes of a stamp file for a build of `context`, or None while a stamp is not
    settled. `answer` holds only str, int, list, tuple and dict values (what marshal writes).
    """
    now = time.time_ns() if now_ns is None else now_ns
    if not all(settled(s, now) for s in stamps.values()):
        return None
    return marshal.dumps((FORMAT, os.path.abspath(context), dict(answer),
                          sorted(stamps.items())))


def check(root: str | os.PathLike[str], key: str,
          context: str | os.PathLike[str]) -> dict[str, object] | None:
    """The answer in request `key`'s stamp file when it was written for this `context` (the
    key leaves the context's place out, the stamps name it) and every stamp in it is
    unchanged; else None (no file, another format or version, a changed path).

    marshal is not meant for data someone else made, so a file that another user owns or
    may write (a store in a shared directory) is no answer either: only what this user wrote
    (atomic_write's mkstemp files are 0600) is loaded."""
    try:
        with open(file_path(root, key), "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            fmt, where, answer, stamps = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if fmt != FORMAT or where != os.path.abspath(context) or not isinstance(answer, dict) \
            or not isinstance(stamps, list):
        return None
    for item in stamps:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            return None
        path, s = item
        if (content_stamp(path) if isinstance(s, str) else stamp(path)) != s:
            return None
    return answer
