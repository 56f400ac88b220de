"""The library entry point of a build: Dockerfile → parse → plan → solve → commit → export.

`build(options, sink)` never prints: it reports progress as events to `sink` and returns a
BuildResult (or raises a PybuildError: DockerfileError 3, BuildFailed/StepFailed 1 with the
failing instruction's span, ImageError, EnvironmentProblem 4). Nothing is tagged or exported
unless the whole build succeeded.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder import buildrecord, buildstamp, events
from builder.digest import Digest, Fingerprint
from builder.errors import Diagnostic, DockerfileError, ImageError, Severity, UsageError
from builder.executor import ResolvedImage, SolveOptions, StepFailed, commit_stage, solve
from builder.executor.scheduler import SolveStats
from builder.executor.secrets import SecretSource
from builder.export import OutputSpec
from builder.export import write as write_output
from builder.frontend import PlanOptions, plan
from builder.frontend.dockerignore import BadPattern, load_ignore
from builder.graph import (
    BaseImageInfo,
    BuildPlan,
    ContextSource,
    HttpSource,
    ImageSource,
    StepId,
)
from builder.graph import ImageConfig as PlanImageConfig
from builder.graph import Platform as PlanPlatform
from builder.oci import layout
from builder.oci.image import get_image, record_layers, rfc3339
from builder.oci.model import Compression, Platform
from builder.oci.reference import ImageRef, Transport, parse
from builder.store import CacheRecord, Store, atomic_write
from builder.syntax import parse as parse_dockerfile
from builder.syntax.nodes import Dockerfile

if TYPE_CHECKING:  # builder.cache is imported only by builds that use --cache-to/--cache-from
    from builder.cache import CacheImporter, CacheSpec


@dataclass(slots=True)
class BuildOptions:
    """Everything `pybuild build` takes (docker build / buildx flags)."""

    context: Path
    # a path, "-" (then the text is `dockerfile_text`), or None for CONTEXT/Dockerfile
    dockerfile: str | None = None
    dockerfile_text: str | None = None
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str | None], ...] = ()
    target: str | None = None
    no_cache: bool = False
    pull: str = "missing"                  # missing | always | never
    push: bool = False                     # push every -t name after the build
    labels: tuple[tuple[str, str], ...] = ()
    network: str = "default"               # default (= host) | host | none
    outputs: tuple[OutputSpec, ...] = ()
    compression: Compression = Compression.GZIP
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    source_date_epoch: int | None = None
    iidfile: str | None = None
    metadata_file: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretSource, ...] = ()          # --secret (read only when a RUN mounts it)
    ssh: tuple[tuple[str, str], ...] = ()           # --ssh: (id, agent socket)
    cache_to: tuple[CacheSpec, ...] = ()    # --cache-to (builder.cache)
    cache_from: tuple[CacheSpec, ...] = ()  # --cache-from


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build made: the stored image (manifest and config digests), its tags, the
    outputs written (type, dest, manifest digest) and the solve statistics."""

    manifest_digest: str
    config_digest: str
    names: tuple[str, ...]
    outputs: tuple[tuple[str, str, str | None], ...]
    stats: SolveStats
    duration: float
    warnings: tuple[Diagnostic, ...] = ()
    pushed: tuple[tuple[str, str], ...] = ()   # (name, manifest digest pushed)


def _read_dockerfile(opts: BuildOptions) -> tuple[str, str]:
    """(display path, text) of the Dockerfile."""
    if opts.dockerfile == "-":
        return "-", opts.dockerfile_text or ""
    path = Path(opts.dockerfile) if opts.dockerfile else opts.context / "Dockerfile"
    try:
        return str(opts.dockerfile or "Dockerfile"), path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"cannot read the Dockerfile {path}: no such file",
                         hint="pass -f FILE, or run from the directory that has one") from None
    except OSError as e:
        raise UsageError(f"cannot read the Dockerfile {path}: {e.strerror}") from None


class ImageResolver:
    """Finds base images for FROM / COPY --from=<image>: a name in the store, pulled from its
    registry when missing (`pull="missing"`) or every time (`"always"`, except a digest
    already stored: it cannot change), never with `"never"`; or a file reference
    (oci-layout://, oci:, oci-archive:, docker-archive:) loaded into the store.
    Memoised per reference for the whole build (a tag resolves once)."""

    def __init__(self, store: Store, pull: str, environ: Mapping[str, str] | None = None,
                 sink: events.Sink = events.discard) -> None:
        self.store = store
        self.pull = pull
        self.environ = environ
        self.sink = sink
        self._cache: dict[str, ResolvedImage] = {}
        self._lock = threading.Lock()

    def __call__(self, ref_text: str, platform: PlanPlatform | None = None) -> ResolvedImage:
        with self._lock:
            hit = self._cache.get(ref_text)
            if hit is None:
                hit = self._resolve(ref_text, platform)
                self._cache[ref_text] = hit
            return hit

    def _resolve(self, ref_text: str, platform: PlanPlatform | None) -> ResolvedImage:
        try:
            ref = parse(ref_text)
        except ValueError as e:
            raise ImageError(f"invalid base image reference {ref_text!r}: {e}") from None
        plat = None
        if platform is not None:
            plat = Platform(platform.os, platform.architecture, platform.variant)
        pulled = False
        if ref.transport is not Transport.NAME:
            loaded = layout.load(self.store, ref)
            if not loaded:
                raise ImageError(f"{ref_text}: no image found")
            digest = loaded[0].manifest.digest
        else:
            stored_digest = ref.digest is not None and self.store.has_blob(ref.digest)
            found = ref.digest if stored_digest else self.store.get_image(ref.name)
            if found is None and self.pull == "never":
                raise ImageError(f"base image {ref.familiar} is not in the store, and "
                                 "--pull=never forbids fetching it",
                                 hint="pull it first (`pybuild pull NAME`), load it (`pybuild "
                                 "load -i FILE`), or build with --pull=missing")
            if found is None or (self.pull == "always" and not stored_digest):
                found = self._pull(ref, plat)
                pulled = True
            digest = found
        try:
            img = get_image(self.store, digest, plat)
        except ImageError:
            # A stored multi-platform index without this platform's image: fetch that one.
            if ref.transport is not Transport.NAME or pulled or self.pull == "never":
                raise
            img = get_image(self.store, self._pull(ref, plat), plat)
        record_layers(self.store, img.manifest_digest)
        return ResolvedImage(ref_text, img)

    def _pull(self, ref: ImageRef, plat: Platform | None) -> Digest:
        from builder.registry.pull import pull

        return pull(self.store, ref, plat, environ=self.environ, sink=self.sink)

    def info(self, ref_text: str, platform: PlanPlatform | None) -> BaseImageInfo:
        """The planner's view of a base image (its config, platform and digest)."""
        r = self(ref_text, platform)
        cfg = r.image.config
        return BaseImageInfo(ref=ref_text,
                             config=PlanImageConfig.from_oci(cfg.config.to_json()),
                             platform=PlanPlatform(cfg.os or "linux",
                                                   cfg.architecture or "amd64", cfg.variant),
                             digest=str(r.manifest_digest))


def _one_line(text: str) -> str:
    text = re.sub(r"\\\s*\n\s*", "", text)
    return " ".join(text.split())


def step_names(df: Dockerfile, bp: BuildPlan) -> dict[StepId, str]:
    """Display names as BuildKit prints them: `[stage 2/5] RUN make`,
    `[internal] load build context`."""
    originals = {(i.span.line, i.span.column): i.original for i in df.instructions}
    names: dict[StepId, str] = {}
    for stage in bp.live_stages():
        label = stage.name or f"stage-{stage.index}"
        total = len(stage.steps) + 1
        if stage.base_stage is None and stage.base_root is not None:
            names.setdefault(stage.base_root, f"[{label} 1/{total}] FROM {stage.base}")
        for n, sid in enumerate(stage.steps, start=2):
            span = bp.spans.get(sid)
            text = originals.get((span.line, span.column), "") if span else ""
            names.setdefault(sid, f"[{label} {n}/{total}] {_one_line(text)}")
    for sid, step in bp.steps.items():
        if isinstance(step, ContextSource):
            names.setdefault(sid, "[internal] load build context")
        elif isinstance(step, ImageSource) and not step.is_scratch:
            names.setdefault(sid, f"[internal] load metadata for {step.ref}")
    return names


def _line_text(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def _created_key(bp: BuildPlan, root_key: str, opts: BuildOptions) -> str:
    """The cache key of the image's first-build time (see `_created`)."""
    stage = bp.target_stage
    return Fingerprint.of_parts("pybuild.image-created/v1", root_key, repr(stage.config),
                                repr([(h.created_by, h.empty_layer) for h in stage.history]),
                                repr(sorted(opts.labels)), stage.author).hex


def _created(store: Store, bp: BuildPlan, root_key: str, opts: BuildOptions,
             remote: CacheImporter | None = None) -> str:
    """The image's `created` time: SOURCE_DATE_EPOCH when given; else the time this exact
    image (same filesystem key, config, history and labels) was first built, so a fully
    cached rebuild gives the same image ID, as BuildKit does. The record travels with an
    exported cache (`remote`), so another machine's fully cached build gives the same ID."""
    if opts.source_date_epoch is not None:
        return rfc3339(opts.source_date_epoch)
    key = _created_key(bp, root_key, opts)
    rec = store.get_cache(key)
    if rec is None and remote is not None and not opts.no_cache:
        rec = remote(key)
    if rec is not None and rec.config.get("created"):
        return str(rec.config["created"])
    created = rfc3339(time.time())
    store.put_cache(CacheRecord(key, None, {"created": created}))
    return created


def _save_record(store: Store, bp: BuildPlan, results: Mapping[StepId, Any],
                 names: Mapping[StepId, str], opts: BuildOptions, text: str,
                 result: BuildResult, warnings: tuple[str, ...],
                 tags: Mapping[str, str]) -> None:
    """Remember what this build depended on, and the warnings it showed, for the
    warm-rebuild fast path (builder.buildrecord, builder.buildstamp); skipped when a base
    image came from a file reference, and when the build downloaded a remote file (ADD
    <url>): its content may change at any time, so like BuildKit every build asks the server
    again, and the fast path — which answers from local stamps only — must not answer it."""
    images: list[tuple[str, str]] = []
    contexts: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = []
    stamps: dict[str, buildstamp.Stamp | None] = {}
    for sid, res in results.items():
        step = bp.steps[sid]
        if isinstance(step, HttpSource):
            return
        if isinstance(step, ImageSource) and not step.is_scratch:
            if parse(step.ref).transport is not Transport.NAME or res.base is None:
                return
            images.append((step.ref, str(res.base.manifest_digest)))
        elif isinstance(step, ContextSource):
            contexts.append((sid, step.includes, step.excludes, res.key))
            stamps.update(res.context.stamps)
    shown = tuple(names[sid] for sid in bp.topological(bp.target_stage.root)
                  if sid in names and not isinstance(bp.steps[sid], ContextSource | ImageSource))
    key = buildstamp.request_key(
        dockerfile_text=text.encode(), dockerfile_path=opts.dockerfile,
        context=str(opts.context), build_args=opts.build_args, environ=opts.environ,
        target=opts.target, labels=opts.labels, source_date_epoch=opts.source_date_epoch,
        network=opts.network)
    buildrecord.save(store, key, buildrecord.BuildRecord(
        result.manifest_digest, result.config_digest, tuple(sorted(images)),
        tuple(sorted(contexts)), shown, warnings), opts.context, stamps, tags)


def _cache_importer(store: Store, opts: BuildOptions,
                    sink: events.Sink) -> CacheImporter | None:
    """The `--cache-from` sources, read (small JSON only) before solving; a damaged or
    missing source is a warning (builder.cache). None without sources or with --no-cache."""
    if not opts.cache_from or opts.no_cache:
        return None
    from builder.cache import CacheImporter

    def warn(message: str) -> None:
        sink(events.Warning(Diagnostic("CACHE-IMPORT", Severity.WARNING, message)))

    return CacheImporter(store, opts.cache_from, warn)


def _export_caches(store: Store, bp: BuildPlan, results: Mapping[StepId, Any],
                   opts: BuildOptions, root_key: str, sink: events.Sink) -> None:
    """Write each `--cache-to`: `mode=min` the steps whose layers make up the image (the
    target's root chain, through any `FROM <stage>` bases, but not the stages it only copies
    from: buildx's "layers for the resulting image"), `mode=max` every step built; plus the
    image's first-build time (no such record with SOURCE_DATE_EPOCH)."""
    if not opts.cache_to:
        return
    from builder.cache import export_cache
    target: set[StepId] = set()
    sid: StepId | None = bp.target_stage.root
    while sid is not None and sid not in target:
        target.add(sid)
        sid = getattr(bp.steps[sid], "root", None)
    extra = [] if opts.source_date_epoch is not None else [_created_key(bp, root_key, opts)]
    for spec in opts.cache_to:
        keys = [res.key for sid, res in results.items()
                if res.key and (spec.mode == "max" or sid in target)]
        sink(events.Message(f"exporting cache to {spec.describe()} (mode={spec.mode})"))
        try:
            export_cache(store, [*sorted(set(keys)), *extra], spec)
        except ImageError as err:
            if not spec.ignore_error:
                raise
            sink(events.Warning(Diagnostic("CACHE-EXPORT", Severity.WARNING,
                                           f"{err.message} (ignored: ignore-error=true)")))


def checks(df: Dockerfile) -> tuple[Diagnostic, ...]:
    """BuildKit's build checks (the linter's `buildkit` rules) over a parsed Dockerfile, as
    diagnostics; empty when the linter is not installed."""
    try:
        from builder.lint import RULES, lint
    except ImportError:  # pragma: no cover - the linter ships with pybuild
        return ()
    out = []
    for finding in lint(df):
        rule = RULES.get(finding.code)
        if rule is not None and rule.source == "buildkit":
            out.append(finding.to_diagnostic())
    return tuple(out)


def _cached_checks(store: Store, text: str, df: Dockerfile) -> tuple[Diagnostic, ...]:
    """`checks(df)`, remembered per Dockerfile text: the findings depend on nothing else, and
    importing the linter is a noticeable part of a short build's start-up."""
    from builder.source import Span

    key = Fingerprint.of_parts("pybuild.buildchecks/v1", df.path, text).hex
    rec = store.get_cache(key)
    if rec is not None and isinstance(rec.config.get("checks"), list):
        out = []
        for d in rec.config["checks"]:
            span = Span(*d["span"]) if d.get("span") else None
            out.append(Diagnostic(d["code"], Severity(d["severity"]), d["message"], span,
                                  d.get("hint"), d.get("url"), d.get("line_text")))
        return tuple(out)
    found = checks(df)
    data = [{"code": d.code, "severity": d.severity.value, "message": d.message,
             "span": [d.span.file, d.span.line, d.span.column, d.span.end_line,
                      d.span.end_column] if d.span else None,
             "hint": d.hint, "url": d.url, "line_text": d.line_text} for d in found]
    store.put_cache(CacheRecord(key, None, {"checks": data}))
    return found


def check(opts: BuildOptions) -> tuple[Diagnostic, ...]:
    """`pybuild build --check`: parse and plan (no build), then run the build checks.
    Raises DockerfileError for an invalid Dockerfile, like a build would."""
    path, text = _read_dockerfile(opts)
    df = parse_dockerfile(text, path)
    host = Platform.host()
    # Plan without resolving base images (no store access): catches what a build would
    # reject before running anything (no FROM, unknown stage, bad flags …).
    plan(df, PlanOptions(build_args=opts.build_args, environ=dict(opts.environ),
                         target=opts.target,
                         build_platform=PlanPlatform(host.os, host.architecture, host.variant),
                         parse=parse_dockerfile))
    return checks(df)


def build(store: Store, opts: BuildOptions, sink: events.Sink = events.discard) -> BuildResult:
    """Run one build (see the module docstring)."""
    t0 = time.monotonic()
    if not opts.context.is_dir():
        raise UsageError(f"build context {opts.context} is not a directory")
    path, text = _read_dockerfile(opts)
    df = parse_dockerfile(text, path)
    shown: list[Diagnostic] = list(_cached_checks(store, text, df))
    for diag in shown:
        sink(events.Warning(diag))
    try:
        _, excludes = load_ignore(opts.context, None if opts.dockerfile in (None, "-")
                                  else opts.dockerfile)
    except BadPattern as e:
        raise UsageError(f".dockerignore: {e}") from None
    resolver = ImageResolver(store, opts.pull, opts.environ or None, sink)
    host = Platform.host()
    build_platform = PlanPlatform(host.os, host.architecture, host.variant)
    bp = plan(df, PlanOptions(build_args=opts.build_args, environ=dict(opts.environ),
                              target=opts.target, build_platform=build_platform,
                              resolver=resolver.info, dockerignore=tuple(excludes),
                              parse=parse_dockerfile))
    for w in bp.warnings:
        if isinstance(w, Diagnostic) and w.severity in (Severity.ERROR, Severity.WARNING):
            shown.append(w)
            sink(events.Warning(w))
    stage = bp.target_stage
    names = step_names(df, bp)
    tags: dict[str, str] = {}  # -t text → the name it sets
    for t in opts.tags:
        try:
            ref = parse(t)
        except ValueError as e:
            raise UsageError(f"invalid tag {t!r}: {e}") from None
        if ref.transport is not Transport.NAME:
            raise UsageError(f"invalid tag {t!r}: not an image name")
        tags[t] = ref.name
    names_out = list(dict.fromkeys(tags.values()))
    if opts.push and not names_out:
        raise UsageError("--push needs a name to push to", hint="add -t REGISTRY/NAME:TAG")
    sde = opts.source_date_epoch
    remote = _cache_importer(store, opts, sink)
    options = SolveOptions(context_dir=opts.context, resolve_image=resolver,
                           no_cache=opts.no_cache,
                           network="host" if opts.network == "default" else opts.network,
                           source_date_epoch=sde, sink=sink,
                           secrets={s.id: s for s in opts.secrets}, ssh=dict(opts.ssh),
                           environ=opts.environ, remote_cache=remote)
    with store.in_use():
        try:
            solution = solve(store, bp, [stage.root], options, jobs=opts.jobs, names=names)
        except StepFailed as err:
            span = bp.spans.get(err.step)
            msg = err.message
            if span is not None and err.step in names:  # a source (ADD <url>) has no name:
                msg = f"{names[err.step]}: {err.message}"  # its span says which line
            err.diagnostics = (Diagnostic("BUILD-STEP", Severity.ERROR, msg, span, err.hint,
                                          None, _line_text(text, span.line) if span else None),)
            raise
        except DockerfileError:
            raise
        root_key = solution.results[stage.root].key
        created = _created(store, bp, root_key, opts, remote)
        desc = commit_stage(store, bp, stage, solution.results, source_date_epoch=sde,
                            extra_labels=dict(opts.labels), created=created)
        img = get_image(store, desc.digest)
        _export_caches(store, bp, solution.results, opts, root_key, sink)
        outputs: list[tuple[str, str, str | None]] = []
        for spec in opts.outputs:
            sink(events.Message(f"exporting to {spec.type} {spec.dest}"))
            written = write_output(store, desc.digest, spec, names=tuple(names_out),
                                   compression=opts.compression)
            outputs.append((spec.type, spec.dest, str(written.digest) if written else None))
        for name in names_out:
            store.set_image(name, desc.digest)
        pushed: list[tuple[str, str]] = []
        if opts.push:
            from builder.registry.push import push

            for name in names_out:
                done = push(store, desc.digest, parse(name), compression=opts.compression,
                            environ=opts.environ or None, sink=sink)
                pushed.append((name, str(done.digest)))
    manifest_digest = str(desc.digest)
    exported = next((d for t, _, d in outputs if d and t == "oci"), None) or \
        (pushed[0][1] if pushed else None)   # buildx reports the pushed manifest's digest
    result = BuildResult(manifest_digest=manifest_digest, config_digest=str(img.id),
                         names=tuple(names_out), outputs=tuple(outputs),
                         stats=solution.stats, duration=time.monotonic() - t0,
                         warnings=tuple(w for w in bp.warnings if isinstance(w, Diagnostic)),
                         pushed=tuple(pushed))
    if opts.iidfile:
        atomic_write(Path(opts.iidfile), result.config_digest.encode())
    if opts.metadata_file:
        meta = {"containerimage.digest": exported or manifest_digest,
                "containerimage.config.digest": result.config_digest,
                "containerimage.descriptor": {"mediaType": desc.media_type,
                                              "digest": exported or manifest_digest,
                                              "size": desc.size},
                "image.name": ",".join(names_out)}
        atomic_write(Path(opts.metadata_file),
                     (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    if not opts.no_cache and opts.pull != "always":
        _save_record(store, bp, solution.results, names, opts, text, result,
                     tuple(d.render() for d in shown), tags)
    sink(events.BuildFinished(manifest_digest, result.config_digest, result.duration,
                              solution.stats.cached, solution.stats.total))
    return result
