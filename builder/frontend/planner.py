"""The planner: a parsed Dockerfile + PlanOptions → BuildPlan, one converter per instruction."""

from __future__ import annotations

import csv
import re

from builder.errors import Diagnostic as Diag
from builder.errors import DockerfileError, PybuildError, Severity, UsageError
from builder.frontend.convert import CONVERTERS, flags_of
from builder.frontend.expand import ExpansionError
from builder.frontend.options import PlanOptions
from builder.frontend.state import DEFAULT_PATH, PROXY_ARGS, PlanContext, StageState
from builder.graph import BaseImageInfo, BuildPlan, ImageSource, Platform, Stage, StepId
from builder.syntax import nodes as n
from builder.syntax.nodes import Dockerfile

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


def plan(dockerfile: Dockerfile, options: PlanOptions | None = None) -> BuildPlan:
    """Plan `dockerfile` with BuildKit's semantics. Pure: no I/O, no processes.

    - Global ARGs (before the first FROM) are visible in FROM lines only, unless a stage
      redeclares them with a bare `ARG NAME`; the automatic platform ARGs are global too.
    - Stages the target does not reach (through FROM, COPY --from, RUN --mount from=) are
      pruned: planned for display when possible, never resolved, their errors only warnings.
    - Raises DockerfileError (code, FILE:LINE:COL) for unknown/forward/duplicate stages, bad
      flag values, failed expansions, bad JSON forms and unknown flags; UsageError for an
      unknown --target.
    """
    options = options or PlanOptions()
    ctx = PlanContext(dockerfile, options)
    for key, value in options.build_args:
        if value is None:
            value = options.environ.get(key)
        if value is not None:
            ctx.build_args[key] = value

    meta_nodes, stage_nodes = _split(ctx, dockerfile)
    meta_env = _global_args(ctx, meta_nodes)
    froms = _stages(ctx, stage_nodes, meta_env)
    target = _target(ctx, froms)
    reachable = _reachable(ctx, stage_nodes, froms, meta_env, target)

    for index, (node, body) in enumerate(stage_nodes):
        st = froms[index]
        live = index in reachable
        mark = len(ctx.warnings)
        try:
            _dispatch(ctx, st, body, resolve=live)
        except DockerfileError as err:
            if live:
                raise
            del ctx.warnings[mark:]
            ctx.warnings.append(Diag("DF-PRUNED-STAGE", Severity.INFO,
                                     f"stage {st.label} (not needed for the target) could not "
                                     f"be planned: {err.message}", node.span))
        else:
            if not live:  # BuildKit checks only what it builds
                del ctx.warnings[mark:]
        ctx.stages.append(st)
    ctx.current = None

    _unused_build_args(ctx)
    stages = tuple(_freeze(st) for st in ctx.stages)
    return BuildPlan(
        stages=stages,
        target=target,
        pruned=tuple(i for i in range(len(stages)) if i not in reachable),
        steps=dict(ctx.steps),
        spans=dict(ctx.spans),
        context_excludes=tuple(options.dockerignore),
        build_args=tuple(ctx.build_args.items()),
        warnings=tuple(ctx.warnings),
    )


# ----------------------------------------------------------------------------- structure


def _split(ctx: PlanContext, df: Dockerfile
           ) -> tuple[list[n.Arg], list[tuple[n.From, list[n.Instruction]]]]:
    meta: list[n.Arg] = []
    stages: list[tuple[n.From, list[n.Instruction]]] = []
    for inst in df.instructions:
        if isinstance(inst, n.From):
            stages.append((inst, []))
        elif not stages:
            if not isinstance(inst, n.Arg):
                raise ctx.error("DF-NO-STAGE", f"{inst.keyword} before the first FROM: no build "
                                "stage in current context", inst.span,
                                hint="only ARG may come before the first FROM")
            meta.append(inst)
        else:
            stages[-1][1].append(inst)
    if not stages:
        raise ctx.error("DF-NO-STAGE", "the Dockerfile has no FROM instruction",
                        df.instructions[0].span if df.instructions else None,
                        hint="start the build stage with FROM <image> (or FROM scratch)")
    return meta, stages


def _global_args(ctx: PlanContext, meta_nodes: list[n.Arg]) -> dict[str, str]:
    """Global scope: automatic platform ARGs, then ARGs before the first FROM (a --build-arg
    wins over a default; defaults may use earlier global ARGs)."""
    bp, tp = ctx.options.build_platform, ctx.target_platform
    platform_args = {
        "BUILDPLATFORM": str(bp), "BUILDOS": bp.os, "BUILDARCH": bp.architecture,
        "BUILDVARIANT": bp.variant,
        "TARGETPLATFORM": str(tp), "TARGETOS": tp.os, "TARGETARCH": tp.architecture,
        "TARGETVARIANT": tp.variant,
    }
    for key in platform_args:
        if key in ctx.build_args:
            platform_args[key] = ctx.build_args[key]
            ctx.consumed.add(key)
    ctx.meta_args = dict(platform_args)
    for node in meta_nodes:
        flags_of(ctx, node)
        for decl in node.decls:
            env = {k: v or "" for k, v in ctx.meta_args.items()}
            if decl.name in ctx.build_args:
                value: str | None = ctx.build_args[decl.name]
                ctx.consumed.add(decl.name)
            elif decl.default is not None:
                value = ctx.expand(decl.default, env, node)
            else:
                value = None
            ctx.meta_args.pop(decl.name, None)
            ctx.meta_args[decl.name] = value
    return {k: v or "" for k, v in ctx.meta_args.items()}


def _stages(ctx: PlanContext, stage_nodes: list[tuple[n.From, list[n.Instruction]]],
            meta_env: dict[str, str]) -> list[StageState]:
    out: list[StageState] = []
    for index, (node, _) in enumerate(stage_nodes):
        flags = flags_of(ctx, node)
        base = _expand_from(ctx, node.image, meta_env, node)
        if not base:
            raise ctx.error("DF-FROM", f"base name ({node.image}) should not be blank", node.span,
                            hint="check the ARG used in this FROM has a value")
        name = None
        if node.stage_name is not None:
            name = node.stage_name.lower()
            span = node.stage_name_span or node.span
            if not _STAGE_NAME.match(name):
                raise ctx.error("DF-STAGE-NAME", f"invalid name for build stage: "
                                f'"{node.stage_name}", name can\'t start with a number or '
                                "contain symbols", span)
            if name in ("context", "scratch"):
                ctx.warnings.append(Diag(
                    "ReservedStageName", Severity.WARNING,
                    f"'{name}' is reserved and should not be used as a stage name", span,
                    "rename the stage", "https://docs.docker.com/go/dockerfile/rule/"
                    "reserved-stage-name/", ctx.source.line(span.line)))
            if name in ctx.by_name_all:
                first = ctx.dockerfile_stages[ctx.by_name_all[name]]
                raise ctx.error("DF-STAGE-DUP", f'duplicate stage name "{node.stage_name}" '
                                f"(first defined at line {first.span.line})", span,
                                hint="give each stage a unique name")
        platform = ctx.target_platform
        if "platform" in flags:
            if str(flags["platform"]) in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
                ctx.warn("RedundantTargetPlatform", "Setting platform to predefined "
                         f"{flags['platform']} in FROM is redundant as this is the default "
                         "behavior", node, "drop --platform from this FROM",
                         "redundant-target-platform")
            text = _expand_from(ctx, str(flags["platform"]), meta_env, node)
            pspan = (node.flag("platform") or node).span
            if not text:
                raise ctx.error("DF-PLATFORM", f"empty platform value from expression "
                                f"{flags['platform']}", pspan)
            try:
                platform = Platform.parse(text)
            except ValueError as err:
                raise ctx.error("DF-PLATFORM", f"failed to parse platform {text}: {err}",
                                pspan) from None
        base_stage = ctx.by_name_all.get(base.lower())
        st = StageState(index=index, name=name, node=node, base=base, base_stage=base_stage,
                        platform=platform)
        out.append(st)
        ctx.dockerfile_stages.append(node)
        if name is not None:
            ctx.by_name_all[name] = index
    return out


def _expand_from(ctx: PlanContext, word: str, meta_env: dict[str, str], node: n.From) -> str:
    """Expand a FROM word with the global scope, reporting undeclared names."""
    result = ctx.process(word, meta_env, node)
    for name in result.unmatched:
        ctx.warn_undefined(name, node, list(meta_env), in_from=True)
    return result.result


def _target(ctx: PlanContext, froms: list[StageState]) -> int:
    want = ctx.options.target
    if want is None or want == "":
        return len(froms) - 1
    index = ctx.by_name_all.get(want.lower())
    if index is None and want.isdigit() and int(want) < len(froms):
        index = int(want)
    if index is None:
        names = ", ".join(s.label for s in froms)
        raise UsageError(f'target stage "{want}" could not be found',
                         hint=f"stages in {ctx.dockerfile.path}: {names}")
    return index


def _from_refs(inst: n.Instruction, meta_env: dict[str, str], ctx: PlanContext) -> list[str]:
    """The stage references of one instruction (COPY --from, RUN --mount from=) as written,
    expanded with the global ARGs when they use variables (best effort, for pruning)."""
    refs: list[str] = []
    if isinstance(inst, n.Copy):
        f = inst.flag("from")
        if f is not None and f.value:
            refs.append(f.value)
    elif isinstance(inst, n.Run):
        for value in inst.flag_values("mount"):
            for fld in next(csv.reader([value or ""]), []):
                key, _, val = fld.partition("=")
                if key.lower() == "from" and val:
                    refs.append(val)
    out = []
    for ref in refs:
        if "$" in ref:
            try:
                ref = ctx.lexer.process(ref, meta_env).result
            except ExpansionError:
                continue
        out.append(ref)
    return out


def _reachable(ctx: PlanContext, stage_nodes: list[tuple[n.From, list[n.Instruction]]],
               froms: list[StageState], meta_env: dict[str, str], target: int) -> set[int]:
    deps: dict[int, set[int]] = {}
    for index, (_, body) in enumerate(stage_nodes):
        found: set[int] = set()
        base = froms[index].base_stage
        instructions = list(body)
        if base is not None:
            found.add(base)
            # The base stage's ONBUILD triggers run in this stage: their --from count here.
            instructions += [i.inner for i in stage_nodes[base][1] if isinstance(i, n.Onbuild)]
        for inst in instructions:
            for ref in _from_refs(inst, meta_env, ctx):
                if ref.isdigit():
                    if int(ref) < len(froms):
                        found.add(int(ref))
                elif ref.lower() in ctx.by_name_all:
                    found.add(ctx.by_name_all[ref.lower()])
        deps[index] = found
    seen: set[int] = set()
    todo = [target]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo += sorted(deps[i])
    return seen


# ----------------------------------------------------------------------------- dispatch


def _resolve_base(ctx: PlanContext, st: StageState) -> BaseImageInfo | None:
    """Ask the caller's resolver for the base image; a failure is reported at the FROM line
    (the resolver knows the image, the planner knows where the Dockerfile named it)."""
    assert ctx.options.resolver is not None
    try:
        return ctx.options.resolver(st.base, st.platform)
    except PybuildError as err:
        if not err.diagnostics:
            at = ctx.error("DF-BASE-IMAGE", err.message, st.node.span, hint=err.hint)
            err.diagnostics = at.diagnostics
        raise


def _dispatch(ctx: PlanContext, st: StageState, body: list[n.Instruction], *,
              resolve: bool) -> None:
    node = st.node
    ctx.current = st
    if st.base_stage is not None:
        base = ctx.stages[st.base_stage]
        st.inherit(base)
        st.deps.add(base.index)
        st.run_env = dict(base.run_env)  # BuildKit: the llb state (with its ARGs) carries over
        st.base_root = base.root
    else:
        st.root = st.base_root = ctx.add(ImageSource(ref=st.base, platform=st.platform),
                                         node.span)
        if st.base != "scratch" and resolve and ctx.options.resolver is not None:
            info = _resolve_base(ctx, st)
            if info is not None:
                st.load_config(info.config)
                # No platform asked for anywhere: follow the image's own (autoDetectPlatform).
                if (st.node.flag("platform") is None and ctx.options.target_platform is None
                        and info.platform is not None):
                    st.platform = info.platform
    if "PATH" not in st.env:  # BuildKit makes sure PATH is always set
        st.env["PATH"] = DEFAULT_PATH
    for key, value in st.env.items():
        st.set_arg(key, value)

    triggers, st.on_build = list(st.on_build), []
    for trigger in triggers:
        _run_trigger(ctx, st, trigger)
    for inst in body:
        convert = CONVERTERS.get(type(inst))
        if convert is None:
            raise ctx.error("DF-UNKNOWN", f"unknown instruction: {inst.keyword}", inst.span)
        convert(ctx, st, inst)
    st.planned = True


def _run_trigger(ctx: PlanContext, st: StageState, trigger: str) -> None:
    """Execute one ONBUILD trigger of the base image right after FROM (parsed with the
    parser; its steps and errors point at the FROM line)."""
    node = st.node
    parse = ctx.options.parse
    if parse is None:
        from builder.syntax import parse as syntax_parse  # type: ignore[attr-defined]

        parse = syntax_parse
    before = set(ctx.steps)
    try:
        parsed = parse(trigger + "\n", ctx.dockerfile.path)
        assert isinstance(parsed, Dockerfile)
        if len(parsed.instructions) != 1:
            raise ctx.error("DF-ONBUILD", "onbuild trigger should be a single expression",
                            node.span)
        inst = parsed.instructions[0]
        if isinstance(inst, n.From | n.Maintainer | n.Onbuild):
            raise ctx.error("DF-ONBUILD", f"{inst.keyword} isn't allowed as an ONBUILD trigger",
                            node.span)
        CONVERTERS[type(inst)](ctx, st, inst)
    except DockerfileError as err:
        raise ctx.error("DF-ONBUILD", f"ONBUILD trigger {trigger!r} of base image "
                        f"{st.base}: {err.message}", node.span) from None
    for sid in set(ctx.steps) - before:
        ctx.spans[sid] = node.span


def _freeze(st: StageState) -> Stage:
    return Stage(index=st.index, name=st.name, base=st.base, base_stage=st.base_stage,
                 platform=st.platform, root=st.root or StepId(""), steps=tuple(st.steps),
                 config=st.config(), history=tuple(st.history), deps=tuple(sorted(st.deps)),
                 author=st.author, base_root=st.base_root, span=st.node.span)


def _unused_build_args(ctx: PlanContext) -> None:
    proxies = {p.lower() for p in PROXY_ARGS}
    for key in ctx.build_args:
        # Proxies, BUILDKIT_* switches and SOURCE_DATE_EPOCH are read by the builder itself.
        if (key in ctx.consumed or key.lower() in proxies or key.startswith("BUILDKIT_")
                or key == "SOURCE_DATE_EPOCH"):
            continue
        ctx.warnings.append(Diag("DF-UNUSED-ARG", Severity.WARNING,
                                 f"build-arg {key} was not consumed by any ARG", None,
                                 hint="declare it with ARG in the stage that uses it"))
