"""The worker: realises each Step kind (FROM, context, RUN, COPY/ADD, WORKDIR) and keeps the
cache records of the results.

Cache contract (DESIGN.md §3): `key()` is cheap and pure apart from reading the context
(fingerprints, memoised) and resolving base images; `lookup()` reads one small JSON record and
nothing else — no rootfs, no sandbox, no layer I/O. Only a miss (`realise()`) materialises
layer directories, and those stay in the store, so only the first miss of a chain pays for
them. A RUN's overlay upperdir becomes its layer directory as is; a COPY/WORKDIR staging tree
likewise.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import posixpath
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from builder import events
from builder.context import BuildContext, has_magic
from builder.digest import Digest
from builder.errors import BuildFailed, EnvironmentProblem, ImageError, PybuildError
from builder.executor import cachekey
from builder.executor.copy import CopyOptions, Stager, archive_kind, parse_chmod, resolve_chown
from builder.executor.rootfs import (
    LayerView,
    adopt_layer_dir,
    empty_dir,
    flat_dir,
    stack_dirs,
)
from builder.executor.secrets import SecretSource
from builder.graph import (
    ContextSource,
    Copy,
    Exec,
    GitSource,
    HttpSource,
    ImageSource,
    Mkdir,
    Platform,
    Step,
    StepId,
)
from builder.oci.image import StoredImage
from builder.oci.layers import changes_from_tree, commit_layer
from builder.patternmatcher import PatternMatcher
from builder.registry import fetch
from builder.sandbox import Mount as SandboxMount
from builder.sandbox import Process, SandboxSpec
from builder.sandbox import start as sandbox_start
from builder.snapshot import changes as snapshot_changes
from builder.store import CacheRecord, Store

TAIL_LINES = 15
_SHM = "/dev/shm"  # a tmpfs on Linux hosts: secret files never touch the disk


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """A base image found (or loaded) in the store for an `ImageSource` reference."""

    ref: str
    image: StoredImage

    @property
    def manifest_digest(self) -> Digest:
        return self.image.manifest_digest


ImageResolver = Callable[[str, "Platform | None"], ResolvedImage]


@dataclass(frozen=True, slots=True)
class StepResult:
    """A realised (or cached) filesystem state: its cache key and its layer stack.

    `layers` are diff_ids, base first; `base` the external image at the bottom of the stack
    (None for scratch); `diff` the layer this very step added (None: none); `context` is set
    for ContextSource results."""

    key: str
    layers: tuple[Digest, ...] = ()
    base: ResolvedImage | None = None
    diff: Digest | None = None
    context: BuildContext | None = None
    includes: tuple[str, ...] = ()


class StepFailed(BuildFailed):
    """A step failed: `step` names it, `status` is its process exit status (RUN), `tail` the
    last lines of its output. The CLI exit code stays 1 (`exit_code`, BuildFailed)."""

    def __init__(self, step: StepId, message: str, *, status: int | None = None,
                 tail: Sequence[str] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.status = status
        self.tail = tuple(tail)


@dataclass(slots=True)
class SolveOptions:
    """How to realise steps: the context directory, cache use, RUN network for
    `network=default`, SOURCE_DATE_EPOCH and the base-image resolver. `remote_cache`, when
    set, is asked for a key the store misses (imported caches, builder.cache): it returns
    the record after putting it — and its layer — into the store, or None."""

    context_dir: Path
    resolve_image: ImageResolver
    no_cache: bool = False
    network: str = "host"
    source_date_epoch: int | None = None
    sink: events.Sink = events.discard
    remote_cache: Callable[[str], CacheRecord | None] | None = None
    memo_lock: threading.Lock = field(default_factory=threading.Lock)
    secrets: Mapping[str, SecretSource] = field(default_factory=dict)   # --secret, by id
    ssh: Mapping[str, str] = field(default_factory=dict)                # --ssh id → socket
    environ: Mapping[str, str] = field(default_factory=dict)            # for env= secrets


class Worker:
    """Realises steps against one store (see the module docstring)."""

    def __init__(self, store: Store, options: SolveOptions) -> None:
        self.store = store
        self.opts = options
        self._contexts: dict[tuple[str, ...], BuildContext] = {}
        self._memo_lock = options.memo_lock
        self._live: set[Process] = set()
        self._live_lock = threading.Lock()
        self._cancelled = False

    def cancel(self) -> None:
        """Kill every running RUN sandbox (the build failed elsewhere or was interrupted);
        steps that start afterwards fail at once."""
        with self._live_lock:
            self._cancelled = True
            live = list(self._live)
        for proc in live:
            proc.kill()

    def close(self) -> None:
        """Release resources (nothing is held between steps today)."""

    # --- scheduler protocol ------------------------------------------------------------------
    def is_source(self, step: Step) -> bool:
        return isinstance(step, ImageSource | ContextSource | HttpSource | GitSource)

    def key(self, sid: StepId, step: Step, inputs: Sequence[StepResult]) -> str:
        if isinstance(step, ImageSource):
            return ""  # resolved in lookup (it needs the image anyway)
        if isinstance(step, ContextSource | HttpSource):
            return ""  # known only from the content: lookup() reads (or downloads) it
        if isinstance(step, GitSource):
            raise StepFailed(sid, f"ADD from {step.url}: git sources are not supported yet",
                             hint="clone the repository in a RUN step, or add it to the "
                             "context")
        network = ""
        if isinstance(step, Exec) and step.network == "default":
            network = self._network(step)
        return cachekey.step_key(sid, [i.key for i in inputs],
                                 source_date_epoch=self.opts.source_date_epoch,
                                 network=network)

    def _network(self, step: Exec) -> Literal["host", "none"]:
        """The network a RUN gets: its own `--network`, else the build's (default = host)."""
        network = step.network if step.network != "default" else self.opts.network
        return "host" if network in ("host", "default") else "none"

    def lookup(self, sid: StepId, step: Step, key: str,
               inputs: Sequence[StepResult]) -> StepResult | None:
        if isinstance(step, ImageSource):
            return self._image(sid, step)
        if isinstance(step, ContextSource):
            return self._context(sid, step)
        if isinstance(step, HttpSource):
            return self._http(sid, step)
        if self.opts.no_cache:
            return None
        rec = self.store.get_cache(key)
        if rec is None and self.opts.remote_cache is not None:
            rec = self.opts.remote_cache(key)
        if rec is None:
            return None
        base = _chain(inputs, step)
        layers = base.layers + ((rec.diff_id,) if rec.diff_id else ())
        return StepResult(key, layers, base.base, rec.diff_id)

    def realise(self, sid: StepId, step: Step, key: str, inputs: Sequence[StepResult],
                vertex: int) -> StepResult:
        base = _chain(inputs, step)
        if isinstance(step, Exec):
            diff = self._exec(sid, step, base, inputs, vertex)
        elif isinstance(step, Copy):
            diff = self._copy(sid, step, base, inputs)
        elif isinstance(step, Mkdir):
            diff = self._mkdir(sid, step, base)
        else:  # pragma: no cover - every kind is handled above
            raise StepFailed(sid, f"unsupported step kind {step.kind}")
        self.store.put_cache(CacheRecord(key, diff, {"kind": step.kind}))
        layers = base.layers + ((diff,) if diff else ())
        return StepResult(key, layers, base.base, diff)

    # --- sources -----------------------------------------------------------------------------
    def _image(self, sid: StepId, step: ImageSource) -> StepResult:
        if step.is_scratch:
            return StepResult(cachekey.image_key(sid, None))
        resolved = self.opts.resolve_image(step.ref, step.platform)
        return StepResult(cachekey.image_key(sid, str(resolved.manifest_digest)),
                          tuple(resolved.image.config.diff_ids), resolved)

    def _context(self, sid: StepId, step: ContextSource) -> StepResult:
        ctx = self._contexts.get(step.excludes)
        if ctx is None:
            try:
                ctx = BuildContext(self.opts.context_dir, step.excludes)
            except ValueError as err:
                raise StepFailed(sid, f".dockerignore: {err}") from None
            self._contexts[step.excludes] = ctx
        # SQLite connections belong to one thread: open the memo where it is used.
        with self._memo_lock, self.store.stat_memo() as memo:
            prints = ctx.fingerprint(step.includes, memo)
        return StepResult(cachekey.context_key(sid, prints), context=ctx,
                          includes=step.includes)

    def _http(self, sid: StepId, step: HttpSource) -> StepResult:
        """ADD <url>: the remote file, as BuildKit's http source serves it — one file named
        `filename`, mode 0600, mtime from Last-Modified (else the epoch) — presented to the
        Copy step as a one-file build context (the same path as COPY from the context).

        With --checksum and a blob of that digest already stored, no request is made.
        Otherwise a conditional GET with the validators remembered from the last download
        (builder.registry.fetch): a 304 reuses the stored bytes; --no-cache downloads anew.
        The file is checked out under the store's rootfs directory, keyed by the source's
        cache key, so it is regenerable and `prune` removes it."""
        expected = None
        if step.checksum:
            try:
                expected = Digest.parse(step.checksum)
            except ValueError as err:  # the planner validates it; keep the error at the ADD
                raise StepFailed(sid, f"ADD --checksum={step.checksum}: {err}") from None
        remote = fetch.remembered(self.store, step.url)
        if expected is not None and self.store.has_blob(expected) and not self.opts.no_cache:
            if remote is None or remote.digest != expected:
                remote = fetch.Remote(step.url, expected)
        else:
            try:
                remote, _ = fetch.fetch(self.store, step.url, expected=expected,
                                        revalidate=not self.opts.no_cache,
                                        environ=self.opts.environ or None)
            except PybuildError as err:  # RegistryError/ChecksumMismatch: fail at the ADD
                raise StepFailed(sid, err.message, hint=err.hint) from None
        # BuildKit: path.Base(url.Path), else __unnamed__ (never a path component)
        name = step.filename if step.filename not in ("", ".", "..") and "/" not in \
            step.filename else "__unnamed__"
        key = cachekey.http_key(sid, str(remote.digest), name, remote.mtime)
        root = self.store.rootfs_path(f"http-{key}")
        if not root.is_dir():
            with self.store.new_rootfs(f"http-{key}") as tmp:
                target = tmp / name
                with self.store.open_blob(remote.digest) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.chmod(target, 0o600)
                os.utime(target, (remote.mtime, remote.mtime))
        return StepResult(key, context=BuildContext(root), includes=(name,))

    # --- filesystems -------------------------------------------------------------------------
    def lowers(self, layers: Sequence[Digest]) -> list[Path]:
        """Overlay lower directories for a stack (an empty dir for scratch)."""
        return stack_dirs(self.store, layers) or [empty_dir(self.store)]

    def _commit_tree(self, tree: Path) -> Digest | None:
        """Write a staging tree as a layer (None when it is empty) and keep it as the layer's
        overlay lower directory."""
        if not any(tree.iterdir()):
            shutil.rmtree(tree, ignore_errors=True)
            return None
        rec = commit_layer(self.store, changes_from_tree(tree),
                           source_date_epoch=self.opts.source_date_epoch)
        adopt_layer_dir(self.store, rec.diff_id, tree)
        return rec.diff_id

    # --- RUN -----------------------------------------------------------------------------------
    def _exec(self, sid: StepId, step: Exec, base: StepResult, inputs: Sequence[StepResult],
              vertex: int) -> Digest | None:
        if step.security == "insecure":
            # BuildKit refuses it too unless the builder was started with the entitlement
            # (`--allow security.insecure`); pybuild grants no such entitlement.
            raise StepFailed(sid, "RUN --security=insecure is not allowed: pybuild does not "
                             "grant the security.insecure entitlement",
                             hint="drop --security=insecure (the step runs with the default "
                             "capabilities)")
        _require_root_sandbox()
        lowers = self.lowers(base.layers)
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        t0 = time.monotonic()
        sink = self.opts.sink

        def out(line: bytes) -> None:
            text = line.decode("utf-8", "replace").rstrip("\n")
            tail.append(text)
            sink(events.StepLog(vertex, text, time.monotonic() - t0))

        network = self._network(step)
        upper = Path(self._tempdir("upper-"))
        work = Path(self._tempdir("work-"))
        scratch: list[str] = []
        try:
            mounts, mount_env = self._mounts(sid, step, inputs, scratch)
            spec = SandboxSpec(lowers=tuple(str(d) for d in lowers), argv=step.argv,
                               upper=str(upper), work=str(work),
                               env=(*step.env, *step.proxy_env, *mount_env), cwd=step.cwd,
                               user=step.user or "0",
                               network=network,
                               mounts=tuple(mounts))
            try:
                with self._live_lock:
                    if self._cancelled:
                        raise StepFailed(sid, "cancelled")
                    proc = sandbox_start(spec, stdout=out, stderr=out)
                    self._live.add(proc)
                try:
                    result = proc.wait()
                finally:
                    with self._live_lock:
                        self._live.discard(proc)
            except EnvironmentProblem:
                raise  # no sandbox here: exit 4 with the fix, not a step failure
            except StepFailed:
                raise
            except PybuildError as err:
                raise StepFailed(sid, f"cannot run the step: {err.message}",
                                 hint=err.hint) from None
            if self._cancelled:
                raise StepFailed(sid, "cancelled")
            if not result.ok:
                what = result.error or f"exit code: {result.exit_code}"
                raise StepFailed(sid, f"process {_quote_argv(step.argv)} did not complete "
                                 f"successfully: {what}", status=result.exit_code,
                                 tail=tuple(tail))
            changes = snapshot_changes(str(upper), stubs=result.stubs,
                                       lowers=[str(d) for d in lowers])
            if not changes:
                return None
            rec = commit_layer(self.store, changes,
                               source_date_epoch=self.opts.source_date_epoch)
            _drop_unlisted(upper, {c.path for c in changes})
            adopt_layer_dir(self.store, rec.diff_id, upper)
            return rec.diff_id
        finally:
            shutil.rmtree(work, ignore_errors=True)
            for d in scratch:
                shutil.rmtree(d, ignore_errors=True)
            if upper.exists():
                shutil.rmtree(upper, ignore_errors=True)

    def _tempdir(self, prefix: str, parent: str | None = None) -> str:
        import tempfile

        return tempfile.mkdtemp(prefix=prefix, dir=parent or self.store.tmp_root)

    def _mounts(self, sid: StepId, step: Exec, inputs: Sequence[StepResult],
                scratch: list[str]) -> tuple[list[SandboxMount], list[str]]:
        """The sandbox mounts of a RUN and the environment entries they add (secret `env=`,
        SSH_AUTH_SOCK). Directories made for them (context views, secret files) are appended
        to `scratch`, which the caller removes after the RUN."""
        by_id = dict(zip(step.inputs, inputs, strict=True))
        out: list[SandboxMount] = []
        env: list[str] = []

        def scratch_dir(prefix: str, parent: str | None = None) -> Path:
            scratch.append(self._tempdir(prefix, parent))
            return Path(scratch[-1])

        for m in step.mounts:
            if m.type == "tmpfs":
                opts = (f"size={m.size}",) if m.size else ()
                out.append(SandboxMount(target=m.target, type="tmpfs", options=opts))
            elif m.type == "bind":
                src = by_id[m.source] if m.source else None
                host = self._source_root(src) if src is not None else None
                if src is None or host is None:
                    raise StepFailed(sid, f"RUN --mount=type=bind,target={m.target}: no source")
                path = self._mount_source(sid, src, host, m.path, scratch_dir("view-") / "v")
                # Always read-only: the source is the user's context or a shared checkout in
                # the store (BuildKit's `rw` discards writes; we do not support it yet).
                out.append(SandboxMount(target=m.target, source=str(path), readonly=True))
            elif m.type == "cache":
                ident = m.id or m.target
                name = "cache-" + hashlib.sha256(ident.encode()).hexdigest()[:32]
                path = self.store.rootfs_path(name)
                if not path.is_dir():
                    with contextlib.suppress(OSError), self.store.new_rootfs(name) as tmp:
                        os.chmod(tmp, m.mode if m.mode is not None else 0o755)
                        os.chown(tmp, m.uid or 0, m.gid or 0)
                out.append(SandboxMount(target=m.target, source=str(path)))
            elif m.type == "secret":
                data = self._secret(sid, m.id)
                if data is None:
                    if m.required:
                        raise StepFailed(sid, f"secret {m.id} not found",
                                         hint=f"pass it: --secret id={m.id},src=FILE or "
                                         f"--secret id={m.id},env=VARIABLE")
                    continue
                if m.env:
                    env.append(f"{m.env}={data.decode('utf-8', 'surrogateescape')}")
                if m.target:
                    # in RAM when the host has /dev/shm (BuildKit keeps secrets on a tmpfs)
                    path = scratch_dir("secret-", _SHM if os.path.isdir(_SHM) else None) / "s"
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    os.chown(path, m.uid or 0, m.gid or 0)
                    os.chmod(path, m.mode if m.mode is not None else 0o400)
                    out.append(SandboxMount(target=m.target, source=str(path), readonly=True))
            elif m.type == "ssh":
                sock = self.opts.ssh.get(m.id)
                if sock is None:
                    if m.required:
                        raise StepFailed(sid, f"no SSH agent given for id {m.id!r}",
                                         hint=f"pass --ssh {m.id}=$SSH_AUTH_SOCK")
                    continue
                out.append(SandboxMount(target=m.target, source=sock, readonly=True))
                if not any(e.startswith("SSH_AUTH_SOCK=") for e in (*step.env, *env)):
                    env.append(f"SSH_AUTH_SOCK={m.target}")  # as BuildKit's llb.AddSSHSocket
        return out, env

    def _secret(self, sid: StepId, ident: str) -> bytes | None:
        """The bytes of secret `ident`, None when it was not given (or its variable is
        unset)."""
        source = self.opts.secrets.get(ident)
        if source is None:
            return None
        try:
            return source.read(self.opts.environ)
        except OSError as e:
            raise StepFailed(sid, f"secret {ident}: cannot read {source.path}: {e.strerror}",
                             hint="check the --secret src= path") from None

    def _mount_source(self, sid: StepId, src: StepResult, host: Path, path: str,
                      view: Path) -> Path:
        """The host path a bind mount's `source=` names, its symlinks followed inside the
        context or stage filesystem (never to a host file outside it). From a context with
        .dockerignore patterns it is `view`, made to hold only what the patterns let through,
        as BuildKit filters the context it mounts."""
        if src.context is not None and _escapes(path):
            raise StepFailed(sid, f"RUN --mount source={path}: forbidden path outside the "
                             "build context")
        clean = posixpath.normpath("/" + path).lstrip("/")
        if src.context is not None and src.context.matcher is not None:
            try:
                src.context.view(clean, str(view))
            except FileNotFoundError:
                raise StepFailed(sid, f"RUN --mount source={path}: not found in the build "
                                 "context (or excluded by .dockerignore)") from None
            return view
        resolved = src.context.resolve(clean) if src.context is not None else \
            LayerView([host]).resolve(clean)
        if resolved is None:
            raise StepFailed(sid, f"RUN --mount source={path}: too many levels of symlinks")
        return host / resolved if resolved else host

    def _source_root(self, src: StepResult) -> Path | None:
        """A whole filesystem on disk for a bind mount or COPY --from (flattened, cached)."""
        if src.context is not None:
            return src.context.root
        if not src.layers:
            return empty_dir(self.store)
        return flat_dir(self.store, src.layers)

    # --- COPY / ADD ----------------------------------------------------------------------------
    def _copy(self, sid: StepId, step: Copy, base: StepResult,
              inputs: Sequence[StepResult]) -> Digest | None:
        if step.parents:
            raise StepFailed(sid, "COPY --parents is not supported yet",
                             hint="copy each directory with its own COPY instruction")
        by_id = dict(zip(step.inputs, inputs, strict=True))
        view = LayerView(self.lowers(base.layers))
        staging = Path(self._tempdir("copy-"))
        try:
            opts = CopyOptions()
            if step.chown:
                try:
                    opts.owner = resolve_chown(step.chown, view)
                except BuildFailed as err:  # unknown user/group: report it at the instruction
                    raise StepFailed(sid, err.message, hint=err.hint) from None
            if step.chmod:
                try:
                    opts.chmod = parse_chmod(step.chmod)
                except ValueError as err:
                    raise StepFailed(sid, str(err)) from None
            stager = Stager(staging, view)
            dest = step.dest
            into_dir = dest.endswith("/")
            if step.inline:
                mtime = (self.opts.source_date_epoch or int(time.time())) * 1_000_000_000
                dest_dir = stager.ensure_dir(dest) if into_dir or len(step.inline) > 1 else None
                for f in step.inline:
                    if dest_dir is not None:
                        rel = f"{dest_dir}/{f.name}" if dest_dir else f.name
                    else:
                        parent = stager.ensure_dir(os.path.dirname(dest.rstrip("/")))
                        name = os.path.basename(dest.rstrip("/"))
                        rel = f"{parent}/{name}" if parent else name
                    stager.write_file(rel, f.content.encode(), opts, mtime)
                return self._commit_tree(staging)
            src = by_id[step.source] if step.source else None
            if src is None:
                raise StepFailed(sid, "COPY without a source")
            if src.context is not None:
                ctx = src.context
                if opts.owner is None:
                    opts.owner = (0, 0)
            elif not step.excludes and not any(has_magic(p) for p in step.sources) \
                    and src.layers:
                # COPY --from a stage or image: read its layer directories in place (overlay
                # rules) instead of flattening the whole source filesystem first.
                self._copy_from_layers(sid, step, src, stager, opts)
                return self._commit_tree(staging)
            else:
                root = self._source_root(src)
                assert root is not None
                ctx = BuildContext(root)
            excl = PatternMatcher(list(step.excludes)) if step.excludes else None
            matches = []
            for pattern in step.sources:
                rel = pattern.strip("/")
                if src.context is not None:
                    if _escapes(pattern):
                        raise StepFailed(sid, "forbidden path outside the build context: "
                                         f"{pattern}", hint="sources are relative to the "
                                         "context root; move the file into the context or "
                                         "pass a larger context")
                    # cleaned lexically (BuildKit), exactly as the ContextSource selected it
                    rel = posixpath.normpath("/" + pattern).lstrip("/")
                if src.context is None and rel:
                    rel = LayerView([ctx.root]).resolve(rel) if "*" not in rel else rel
                found = ctx.expand(rel)
                if not found:
                    raise StepFailed(sid, f"failed to compute cache key: \"/{pattern.strip('/')}"
                                     "\": not found",
                                     hint="check the path exists in the build context and "
                                     "is not excluded by .dockerignore" if src.context else
                                     "check the path exists in the source stage or image")
                matches += found
            many = len(step.sources) > 1 or len(matches) > 1
            dest_is_dir = into_dir or many or stager.dest_is_dir(dest)

            def keep_for(top: str) -> Callable[[str, bool], bool]:
                def keep(rel: str, is_dir: bool) -> bool:
                    full = f"{top}/{rel}" if top else rel
                    if excl is not None and excl.matches_or_parent_matches(rel):
                        return False
                    if ctx.matcher is not None and ctx.is_excluded(full):
                        return is_dir and ctx.matcher.exclusions
                    return True
                return keep

            for entry in matches:
                st = os.stat(entry.host) if os.path.islink(entry.host) else entry.st
                if stat.S_ISDIR(st.st_mode):
                    target = stager.ensure_dir(dest, owner=opts.owner)
                    stager.copy_entry(entry.host, target, opts, keep_for(entry.path), "",
                                      follow=True)
                    continue
                name = os.path.basename(entry.path) or os.path.basename(entry.host)
                if step.unpack and src.context is not None and stat.S_ISREG(st.st_mode) \
                        and archive_kind(entry.host):  # never open a FIFO or device to sniff
                    target = stager.ensure_dir(dest, owner=opts.owner)
                    try:
                        stager.extract(entry.host, target, name)
                    except ImageError as err:  # a corrupt or hostile archive: at the ADD
                        raise StepFailed(sid, err.message, hint=err.hint) from None
                    continue
                rel = _file_target(stager, dest, name, dest_is_dir, opts)
                stager.copy_entry(entry.host, rel, opts, follow=True)
            return self._commit_tree(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _copy_from_layers(self, sid: StepId, step: Copy, src: StepResult, stager: Stager,
                          opts: CopyOptions) -> None:
        lowers = self.lowers(src.layers)
        view = LayerView(lowers)
        dest = step.dest
        many = len(step.sources) > 1
        for pattern in step.sources:
            rel = view.resolve(pattern.strip("/"))
            host = view.lookup(rel)
            if host is None:
                raise StepFailed(sid, f"failed to compute cache key: \"/{pattern.strip('/')}\""
                                 ": not found",
                                 hint="check the path exists in the source stage or image")
            if os.path.isdir(host) and not os.path.islink(host):
                target = stager.ensure_dir(dest, owner=opts.owner)
                for layer_host in reversed(view.layers_of(rel)):
                    stager.merge_layer_dir(layer_host, target, opts)
                continue
            # the name as written: a followed symlink source keeps its own name
            name = posixpath.basename(posixpath.normpath("/" + pattern)) or \
                os.path.basename(rel)
            into_dir = dest.endswith("/") or many or stager.dest_is_dir(dest)
            stager.copy_entry(str(host), _file_target(stager, dest, name, into_dir, opts), opts)

    # --- WORKDIR -------------------------------------------------------------------------------
    def _mkdir(self, sid: StepId, step: Mkdir, base: StepResult) -> Digest | None:
        view = LayerView(self.lowers(base.layers))
        if view.is_dir(step.path):
            return None
        owner = None
        if step.user:
            try:
                owner = resolve_chown(step.user, view)
            except BuildFailed:
                owner = None
        staging = Path(self._tempdir("mkdir-"))
        try:
            Stager(staging, view).ensure_dir(step.path, owner=owner)
            return self._commit_tree(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _require_root_sandbox() -> None:
    """The layer directories are in overlayfs' root format (trusted.* xattrs, 0:0 whiteout
    devices), which only the root sandbox mode mounts: refuse RUN clearly elsewhere."""
    from builder.sandbox import Mode, detect

    report = detect()
    if report.mode is Mode.ROOT:
        return
    if report.mode is Mode.NONE:
        raise EnvironmentProblem(f"RUN needs a sandbox, and none works here: {report.reason}",
                                 hint=report.fix or "see `pybuild info`")
    raise EnvironmentProblem(f"RUN steps need the root sandbox mode for now; this machine "
                             f"offers {report.mode.value} ({report.reason})",
                             hint="run the build as root (e.g. `sudo -E pybuild …`); rootless "
                             "builds are not supported yet. COPY-only builds work as is.")


def _file_target(stager: Stager, dest: str, name: str, into_dir: bool,
                 opts: CopyOptions) -> str:
    """Where a file source called `name` lands: inside `dest` (created, --chown'd) when it is
    a directory, else at `dest` itself (its parent created)."""
    if into_dir:
        parent = stager.ensure_dir(dest, owner=opts.owner)
        return f"{parent}/{name}" if parent else name
    clean = dest.rstrip("/")
    parent = stager.ensure_dir(os.path.dirname(clean))
    base_name = os.path.basename(clean)
    return f"{parent}/{base_name}" if parent else base_name


def _escapes(pattern: str) -> bool:
    """True when a relative source path climbs above the context root (`../x`, `a/../../x`);
    Docker refuses those rather than clamping them."""
    clean = posixpath.normpath(pattern)
    return clean == ".." or clean.startswith("../")


def _chain(inputs: Sequence[StepResult], step: Step) -> StepResult:
    """The input a filesystem step builds on (its `root`, always the first input)."""
    if isinstance(step, Exec | Copy | Mkdir):
        return inputs[0]
    raise ValueError(f"{step.kind} has no root")


def _drop_unlisted(upper: Path, keep: set[str]) -> None:
    """Remove from an upperdir what the snapshot left out (sandbox mount-point stubs), so the
    directory matches its layer before it becomes an overlay lower."""
    for dirpath, dirnames, filenames in os.walk(upper, topdown=False):
        rel_dir = os.path.relpath(dirpath, upper)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in [*filenames, *dirnames]:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel in keep:
                continue
            full = os.path.join(dirpath, name)
            if os.path.isdir(full) and not os.path.islink(full):
                with contextlib.suppress(OSError):
                    os.rmdir(full)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(full)


def _quote_argv(argv: Sequence[str]) -> str:
    import json

    return json.dumps(list(argv)) if len(argv) != 3 or argv[1] != "-c" else \
        f'"{argv[0]} {argv[1]} {argv[2]}"'
