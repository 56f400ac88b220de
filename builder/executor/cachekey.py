"""Cache keys (DESIGN.md §3): pure functions from a step's identity, its inputs' cache keys and
the content it reads to the xxh3 key its result is stored under.

What goes in (and therefore what invalidates a step):
- the StepId (every field of the step: argv, env, cwd, user, paths, flags, input StepIds …);
- the cache keys of its inputs, in the step's fixed input order (so a change anywhere upstream
  invalidates everything downstream, and nothing else);
- for a base image: its resolved manifest digest (a re-tagged `latest` is a new base);
- for a remote file (ADD <url>): the sha256 of the bytes downloaded, its file name and the
  mtime it gets from Last-Modified;
- for the build context: a fingerprint of exactly the selected entries — relative path, file
  type, permission bits (incl. setuid/setgid/sticky), uid, gid, symlink target and the xxh3 of
  the content. Never mtime, atime, ctime or inode: a fresh clone of the same commit hits;
- the SOURCE_DATE_EPOCH of the build for layer-producing steps (it changes the layer bytes);
- for a RUN with the default network: the build's `--network` (BuildKit keys the ExecOp's
  network mode; `RUN curl` under `none` must not answer for `host`).

Pure: no I/O. The executor supplies content fingerprints (builder.context does the reading).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from builder.digest import Fingerprint

VERSION = "pybuild.cachekey/v2"
"""Bumped whenever what a key covers changes meaning (invalidates every cache record)."""


@dataclass(frozen=True, slots=True, order=True)
class EntryPrint:
    """What the cache knows about one build-context entry (one line of the fingerprint).

    `kind` is "f" (regular file), "d" (directory), "l" (symlink) or "o" (other);
    `mode` the permission bits with setuid/setgid/sticky (st_mode & 0o7777); `target` the
    symlink target ("" otherwise); `content` the xxh3-128 hex of a regular file's bytes."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    target: str = ""
    content: str = ""

    def encode(self) -> str:
        return f"{self.path}\0{self.kind}\0{self.mode:o}\0{self.uid}\0{self.gid}\0" \
               f"{self.target}\0{self.content}"


def context_key(step_id: str, entries: Iterable[EntryPrint]) -> str:
    """Key of a ContextSource: its StepId (name, includes, excludes) and the sorted entries it
    selects. Order-independent in `entries`; an empty selection is a valid (distinct) key."""
    lines = sorted(e.encode() for e in entries)
    return Fingerprint.of_parts(VERSION, "context", step_id, str(len(lines)), *lines).hex


def image_key(step_id: str, manifest_digest: str | None) -> str:
    """Key of an ImageSource: its StepId plus the resolved manifest digest (None = scratch)."""
    return Fingerprint.of_parts(VERSION, "image", step_id, manifest_digest or "scratch").hex


def http_key(step_id: str, content: str, filename: str, mtime: int) -> str:
    """Key of an HttpSource (ADD <url>): its StepId (URL, --checksum, file name), the sha256
    of the content downloaded and the mtime the file is given (from Last-Modified). Never the
    ETag: a server that re-tags the same bytes still hits."""
    return Fingerprint.of_parts(VERSION, "http", step_id, content, filename, str(mtime)).hex


def step_key(step_id: str, input_keys: Sequence[str], *,
             source_date_epoch: int | None = None, network: str = "") -> str:
    """Key of a filesystem step (Exec, Copy, Mkdir): its StepId, its inputs' keys in order,
    the SOURCE_DATE_EPOCH that clamps the mtimes of the layer it writes and, for an Exec
    whose StepId says `network=default`, the network the build resolves that to."""
    sde = "" if source_date_epoch is None else str(int(source_date_epoch))
    parts = [VERSION, "step", step_id, str(len(input_keys)), *input_keys, "sde", sde]
    if network:
        parts += ["network", network]
    return Fingerprint.of_parts(*parts).hex
