"""The build DAG: Step kinds named after their effect, content-derived StepIds, image config,
history and the BuildPlan the front end hands to the executor.

Contracts (pure data, layer 1 — no I/O, no Dockerfile syntax):

- A Step is a frozen dataclass. Its inputs are other steps, referenced by StepId in its fields
  (`root`, `source`, `Mount.source`). `Step.inputs` lists them in a fixed order.
- `step_id(step)` is the xxh3-128 of a canonical encoding (sorted-key JSON, every field except
  a kind's `_uncached_fields`, the step kind and a schema version). Input StepIds are part of
  that encoding, so an id names the whole history that leads to a step. Source spans are NOT
  part of a step; they live in the side map `BuildPlan.spans`, so editing a comment or moving
  an instruction never changes an id.
- All paths in steps are absolute and already expanded (no `$VAR` left, except a RUN script,
  which the shell expands); `Exec.argv` is the final argv (shell form already wrapped with the
  active SHELL); `Exec.env` + `Exec.proxy_env` is the complete process environment (image ENV
  and ARGs in scope; ARGs are never persisted in the image config).
- Metadata-only instructions (ENV, LABEL, CMD, ENTRYPOINT, EXPOSE, USER, VOLUME, STOPSIGNAL,
  HEALTHCHECK, SHELL, ONBUILD, MAINTAINER, ARG) create no step: they change the stage's
  `ImageConfig` and add a `HistoryEntry` with `empty_layer=True`.
- Steps a stage does not depend on are absent from its chain: two stages that only meet in a
  later `COPY --from` are independent branches the executor may run in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NewType

from builder.digest import Fingerprint
from builder.errors import Diagnostic
from builder.source import Span

StepId = NewType("StepId", str)
"""Hex xxh3-128 of a step's canonical encoding (see `step_id`)."""

SCHEMA = "pybuild.step/v1"
"""Bumped whenever the canonical encoding changes meaning (invalidates every cache key)."""


# --------------------------------------------------------------------------- platform


@dataclass(frozen=True, slots=True, order=True)
class Platform:
    """An OCI platform (image-index `platform` object): os, architecture, optional variant."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse `os/arch[/variant]` (e.g. `linux/arm64/v8`) and normalise it as containerd's
        platforms.Normalize does (aarch64 → arm64 with v8 dropped, x86_64 → amd64, arm → arm/v7
        …); raises ValueError for anything else."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        variant = parts[2].lower() if len(parts) == 3 else ""
        return cls(parts[0].lower(), parts[1].lower(), variant).normalized()

    def normalized(self) -> Platform:
        arch, variant = self.architecture, self.variant
        if arch in ("i386",):
            arch = "386"
        elif arch in ("x86_64", "x86-64"):
            arch = "amd64"
            if variant == "v1":
                variant = ""
        elif arch in ("aarch64", "arm64"):
            arch = "arm64"
            if variant in ("8", "v8", "v8.0"):
                variant = ""
        elif arch == "armhf":
            arch, variant = "arm", "v7"
        elif arch == "armel":
            arch, variant = "arm", "v6"
        elif arch == "arm":
            variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
        return Platform(self.os, arch, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


# --------------------------------------------------------------------------- image config


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthConfig:
    """OCI/Docker `Healthcheck`. `test` is `("NONE",)`, `("CMD", argv...)` or
    `("CMD-SHELL", script)`; durations in nanoseconds (0 = inherit the default)."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def to_oci(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period),
                           ("StartInterval", self.start_interval), ("Retries", self.retries)):
            if value:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    """The runtime config of an image (OCI image-spec `config` object, plus Docker's
    Healthcheck/Shell/OnBuild extensions). Ordered maps are tuples of pairs; `env` entries are
    `KEY=VALUE` strings exactly as the OCI `Env` array. `None` means "unset" (distinct from
    empty), e.g. `cmd=None` inherits nothing while `cmd=()` is an explicit empty command."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: HealthConfig | None = None
    shell: tuple[str, ...] | None = None
    on_build: tuple[str, ...] = ()
    args_escaped: bool = False

    def env_map(self) -> dict[str, str]:
        """`env` as an ordered dict (the first `=` splits; a bare name maps to "")."""
        out: dict[str, str] = {}
        for entry in self.env:
            key, _, value = entry.partition("=")
            out[key] = value
        return out

    def to_oci(self) -> dict[str, Any]:
        """The `config` object of an OCI image config JSON (empty fields omitted)."""
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_oci()
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.args_escaped:
            out["ArgsEscaped"] = True
        return out

    @classmethod
    def from_oci(cls, obj: Mapping[str, Any] | None) -> ImageConfig:
        """Read the `config` object of an OCI/Docker image config JSON (missing = unset)."""
        obj = obj or {}
        hc = obj.get("Healthcheck")
        health = None
        if hc:
            health = HealthConfig(test=tuple(hc.get("Test") or ()),
                                  interval=int(hc.get("Interval") or 0),
                                  timeout=int(hc.get("Timeout") or 0),
                                  start_period=int(hc.get("StartPeriod") or 0),
                                  start_interval=int(hc.get("StartInterval") or 0),
                                  retries=int(hc.get("Retries") or 0))

        def seq(key: str) -> tuple[str, ...] | None:
            v = obj.get(key)
            return None if v is None else tuple(v)

        return cls(
            env=tuple(obj.get("Env") or ()),
            cmd=seq("Cmd"),
            entrypoint=seq("Entrypoint"),
            working_dir=obj.get("WorkingDir") or "",
            user=obj.get("User") or "",
            labels=tuple((obj.get("Labels") or {}).items()),
            exposed_ports=tuple(obj.get("ExposedPorts") or {}),
            volumes=tuple(obj.get("Volumes") or {}),
            stop_signal=obj.get("StopSignal") or "",
            healthcheck=health,
            shell=seq("Shell"),
            on_build=tuple(obj.get("OnBuild") or ()),
            args_escaped=bool(obj.get("ArgsEscaped")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One OCI `history` entry. `created_by` is written as BuildKit writes it (e.g.
    `RUN /bin/sh -c make # buildkit`, `ENV A=b`, `COPY . . # buildkit`); `empty_layer` is True
    for metadata-only instructions; `step` is the step whose layer this entry describes
    (None when empty)."""

    created_by: str
    empty_layer: bool = False
    comment: str = "buildkit.dockerfile.v0"
    step: StepId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseImageInfo:
    """What the front end needs to know about a base image, supplied by the caller's resolver
    (the planner never touches the network): its config (Env for `$PATH`, WorkingDir, User,
    Cmd/Entrypoint, OnBuild triggers …), its platform and, when known, its manifest digest."""

    ref: str
    config: ImageConfig = ImageConfig()
    platform: Platform | None = None
    digest: str | None = None


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """Base of every step kind. Subclasses set `kind` and list their input fields in
    `_input_fields` (StepId or None, in that order)."""

    kind: ClassVar[str] = "step"
    _input_fields: ClassVar[tuple[str, ...]] = ()
    _uncached_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def inputs(self) -> tuple[StepId, ...]:
        """The StepIds this step reads, in a fixed order, without duplicates."""
        out: list[StepId] = []
        for name in self._input_fields:
            value = getattr(self, name)
            if value is not None and value not in out:
                out.append(value)
        for m in getattr(self, "mounts", ()):
            if m.source is not None and m.source not in out:
                out.append(m.source)
        return tuple(out)

    def canonical(self) -> bytes:
        """The canonical encoding hashed into the StepId (sorted-key compact JSON)."""
        body = _encode(self)
        for name in self._uncached_fields:
            body.pop(name, None)
        return json.dumps({"schema": SCHEMA, "kind": self.kind, **body},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _encode(value: Any) -> Any:
    if isinstance(value, Step | Mount | InlineFile | Platform):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def step_data(step: Step) -> dict[str, Any]:
    """Every field of a step as JSON-ready data (tuples as lists, nested dataclasses as dicts)."""
    data = _encode(step)
    assert isinstance(data, dict)
    return data


def step_id(step: Step) -> StepId:
    """The content-derived identity of `step` (covers every field and the input StepIds)."""
    return StepId(Fingerprint.of_bytes(step.canonical()).hex)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSource(Step):
    """The root filesystem of an image: FROM <ref> (or `scratch`, the empty filesystem).

    `ref` is the expanded reference as written (normalisation is the registry layer's job);
    `platform` is the requested platform (FROM --platform, or the target platform)."""

    kind: ClassVar[str] = "image"
    ref: str
    platform: Platform | None = None

    @property
    def is_scratch(self) -> bool:
        return self.ref == "scratch"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextSource(Step):
    """Files of the build context (a local directory) that one COPY/ADD/bind mount reads.

    `name` is "context" for the main context. `excludes` are the .dockerignore patterns in
    order (moby/patternmatcher semantics, `!` = re-include). `includes` is the exact selection
    the consumer needs (the COPY sources, cleaned, relative to the context root; empty = all),
    so the cache key fingerprints only those paths."""

    kind: ClassVar[str] = "context"
    name: str = "context"
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSource(Step):
    """A remote file for ADD <url>: downloaded once, saved as `filename` (mode 0600 unless
    chmod). `checksum` is ADD --checksum (`sha256:…`) or ""."""

    kind: ClassVar[str] = "http"
    url: str
    checksum: str = ""
    filename: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GitSource(Step):
    """A git repository for ADD <git url>: `ref` is the branch/tag/commit ("" = default),
    `subdir` a path inside it, `keep_git_dir` keeps `.git`."""

    kind: ClassVar[str] = "git"
    url: str
    ref: str = ""
    subdir: str = ""
    keep_git_dir: bool = False
    checksum: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """One RUN --mount, as data. `type` is bind|cache|tmpfs|secret|ssh. `source` is the step
    whose filesystem is mounted (bind/cache `from=`; for a bind without `from` the
    ContextSource), None for tmpfs/secret/ssh/cache without `from`. `path` is the path inside
    that source (`source=`/`src=`). Options BuildKit defines that this dataclass does not name
    stay in `options` (sorted key/value pairs)."""

    type: str
    target: str
    source: StepId | None = None
    path: str = ""
    readonly: bool = False
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int | None = None
    env: str = ""
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Exec(Step):
    """RUN: run `argv` over the filesystem of `root` and keep its changes as a new layer.

    `env` is the environment as `KEY=VALUE` (image ENV and the ARGs in scope, in BuildKit's
    order); `proxy_env` the predefined proxy build args (HTTP_PROXY … in upper and lower case),
    which the process sees too but which are NOT part of the StepId (as BuildKit keeps them out
    of its cache key) nor of the image history; `cwd` the absolute working dir; `user` as
    written in USER ("" = root); `network` default|none|host; `security` sandbox|insecure;
    `mounts` as data."""

    kind: ClassVar[str] = "exec"
    _input_fields: ClassVar[tuple[str, ...]] = ("root",)
    _uncached_fields: ClassVar[tuple[str, ...]] = ("proxy_env",)
    root: StepId
    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    network: str = "default"
    security: str = "sandbox"
    mounts: tuple[Mount, ...] = ()
    proxy_env: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineFile:
    """A heredoc source of COPY/ADD: a file called `name` with `content` (already expanded
    when the heredoc delimiter was unquoted)."""

    name: str
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(Step):
    """COPY/ADD: copy `sources` (paths inside `source`'s filesystem, may contain wildcards) to
    `dest` (absolute; a trailing `/` means "into this directory") over `root`.

    `source` is a ContextSource, another stage's final step, an ImageSource, an HttpSource or
    GitSource, or None when every source is an `InlineFile`. `chown` ("user[:group]", ""
    = 0:0), `chmod` (octal text or ""), `link` (--link: layer independent of `root`),
    `excludes` (--exclude patterns), `parents` (--parents). ADD-specific: `unpack` (extract
    local tar archives), `keep_git_dir`, `checksum`. `add` tells ADD from COPY."""

    kind: ClassVar[str] = "copy"
    _input_fields: ClassVar[tuple[str, ...]] = ("root", "source")
    root: StepId
    source: StepId | None
    sources: tuple[str, ...]
    dest: str
    inline: tuple[InlineFile, ...] = ()
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()
    parents: bool = False
    add: bool = False
    unpack: bool = False
    checksum: str = ""
    keep_git_dir: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Mkdir(Step):
    """WORKDIR: create `path` (absolute, with parents, mode 0755) over `root`, owned by `user`
    ("" = root) as BuildKit does; a no-op layer when it exists."""

    kind: ClassVar[str] = "mkdir"
    _input_fields: ClassVar[tuple[str, ...]] = ("root",)
    root: StepId
    path: str
    user: str = ""


STEP_KINDS: dict[str, type[Step]] = {
    cls.kind: cls for cls in (ImageSource, ContextSource, HttpSource, GitSource, Exec, Copy, Mkdir)
}


# --------------------------------------------------------------------------- stages and plan


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One FROM section. `base` is the expanded FROM argument; `base_stage` the index of the
    stage it builds on (None for an image or scratch); `steps` the filesystem steps this stage
    adds, in order (not counting its base); `root` the StepId of its final filesystem;
    `config` the final image config; `history` every instruction's history entry (an external
    base image's own history excluded; a base stage's included). `deps` are the indexes of
    stages it reads (FROM, COPY --from, RUN --mount from); `author` is MAINTAINER;
    `base_root` the StepId the stage starts from (its ImageSource, or the base stage's root)."""

    index: int
    name: str | None
    base: str
    base_stage: int | None
    platform: Platform | None
    root: StepId
    steps: tuple[StepId, ...]
    config: ImageConfig
    history: tuple[HistoryEntry, ...]
    deps: tuple[int, ...] = ()
    author: str = ""
    base_root: StepId | None = None
    span: Span | None = None

    @property
    def label(self) -> str:
        """The name, or the index as text for an unnamed stage."""
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildPlan:
    """The whole build: every stage (pruned ones included, for display), the target stage,
    the indexes of stages the target does not reach, and the DAG.

    `steps` maps every planned StepId to its Step (pruned stages' steps are kept for display;
    `topological()` starts from live stages only); `spans` (side map) names the instruction
    each step came from; `context_excludes` are the .dockerignore
    patterns; `warnings` are non-fatal findings (unused build args, …) as data."""

    stages: tuple[Stage, ...]
    target: int
    pruned: tuple[int, ...]
    steps: Mapping[StepId, Step]
    spans: Mapping[StepId, Span] = field(default_factory=dict)
    context_excludes: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def target_stage(self) -> Stage:
        return self.stages[self.target]

    def live_stages(self) -> tuple[Stage, ...]:
        """Stages the target needs, in file order."""
        return tuple(s for s in self.stages if s.index not in self.pruned)

    def edges(self) -> Iterator[tuple[StepId, StepId]]:
        """(input, step) pairs of the DAG, in a deterministic order."""
        for sid in self.topological():
            for dep in self.steps[sid].inputs:
                yield dep, sid

    def topological(self, root: StepId | None = None) -> tuple[StepId, ...]:
        """Steps in dependency order (inputs first); only those `root` needs when given.
        Deterministic: depth-first over inputs in their fixed order."""
        order: list[StepId] = []
        seen: set[StepId] = set()
        starts = [root] if root is not None else [
            s for st in self.live_stages() for s in (*st.steps, st.root)]
        for start in starts:
            stack: list[tuple[StepId, bool]] = [(start, False)]
            while stack:
                sid, done = stack.pop()
                if done:
                    order.append(sid)
                    continue
                if sid in seen:
                    continue
                seen.add(sid)
                stack.append((sid, True))
                for dep in reversed(self.steps[sid].inputs):
                    if dep not in seen:
                        stack.append((dep, False))
        return tuple(order)
