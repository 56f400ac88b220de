"""pybuild's own stage-aware rules (PB codes): problems that only show when the stages are
read as the build graph BuildKit (and our planner) makes of them.

PB4001 unused stage · PB4002 COPY --from a stage defined later · PB4003 ARG used in a stage
before it is declared there · PB4004 cache-busting order (the whole context copied before
dependencies are installed).
"""

from __future__ import annotations

from collections.abc import Iterator

from builder.errors import Severity
from builder.lint.context import Context, Stage
from builder.lint.finding import Finding
from builder.lint.rule import rule
from builder.lint.rules.buildkit import BUILTIN_ARGS, var_refs
from builder.lint.rules.common import mounts, unquote
from builder.syntax import nodes as n

W, N = Severity.WARNING, Severity.INFO
PB = "pybuild"


def _refs(stage: Stage) -> set[str]:
    """Names/indexes this stage uses: its FROM image, COPY --from, RUN --mount from=."""
    out = {stage.from_.image.lower()}
    for it in stage.items:
        ins = it.instr
        if isinstance(ins, n.Copy):
            f = ins.flag("from")
            if f is not None and f.value:
                out.add(f.value.lower())
        elif isinstance(ins, n.Run):
            out |= {m["from"].lower() for m in mounts(ins) if m.get("from")}
    return out


@rule("PB4001", N, "Stage is never built", source=PB,
      why="With the default target only the last stage and the stages it reaches (FROM, COPY "
          "--from, RUN --mount from=) are built. A stage without a name that the last stage "
          "never reaches cannot even be chosen with `--target NAME`: it is dead code. (Named "
          "stages the last stage does not use are left alone: they are usually `--target` "
          "entry points.)",
      fix="Delete the stage, name it and build it with `--target`, or use it from a later "
          "stage.",
      bad="FROM alpine:3.20\nRUN make\nFROM alpine:3.20\nCOPY app /app",
      good="FROM alpine:3.20 AS build\nRUN make\nFROM alpine:3.20\n"
           "COPY --from=build /app /app")
def unused_stage(ctx: Context) -> Iterator[Finding]:
    stages = ctx.stages
    if len(stages) < 2 or all(s.name for s in stages[:-1]):
        return  # only unnamed stages can be reported; planning is not free
    for idx in sorted(_pruned(ctx)):
        s = stages[idx]
        if not s.name:
            yield ctx.finding("PB4001", s.from_, f"Stage #{idx} has no name and the final "
                              "stage never uses it, so it is never built")


def _pruned(ctx: Context) -> set[int]:
    """Stages the planner prunes for the default target (BuildKit's reachability through
    FROM, COPY --from and RUN --mount from=, with global ARGs expanded). When the planner
    rejects the file, the same walk over the AST."""
    from builder.errors import PybuildError
    from builder.frontend import plan

    try:
        return set(plan(ctx.df).pruned)
    except PybuildError:
        pass
    stages = ctx.stages
    keys = [{s.name.lower(), str(s.index)} if s.name else {str(s.index)} for s in stages]
    reached = {len(stages) - 1}
    todo = [len(stages) - 1]
    while todo:
        refs = _refs(stages[todo.pop()])
        for j in range(len(stages)):
            if j not in reached and keys[j] & refs:
                reached.add(j)
                todo.append(j)
    return set(range(len(stages))) - reached


@rule("PB4002", W, "COPY --from names a stage that is defined later", source=PB,
      why="A build reads top to bottom: the classic builder (and hadolint's DL3022) resolve "
          "`--from` only against stages above, so a forward name is taken as an image and "
          "pulled from a registry; a stage naming itself cannot build at all.",
      fix="Move the stage above the COPY.", bad="FROM alpine\nCOPY --from=build /a /a\n"
      "FROM golang:1.22 AS build", good="FROM golang:1.22 AS build\nFROM alpine\n"
      "COPY --from=build /a /a")
def copy_from_later(ctx: Context) -> Iterator[Finding]:
    names = {s.name.lower(): s.index for s in ctx.stages if s.name}
    for s in ctx.stages:
        for it in s.items:
            ins = it.instr
            src: list[str] = []
            if isinstance(ins, n.Copy):
                f = ins.flag("from")
                src = [f.value] if f is not None and f.value else []
            elif isinstance(ins, n.Run):
                src = [m["from"] for m in mounts(ins) if m.get("from")]
            for v in src:
                idx = names.get(v.lower())
                if idx is not None and idx >= s.index:
                    yield ctx.finding("PB4002", it, f"'{v}' is a stage defined at or below "
                                      "this one; define stages before they are used (older "
                                      "builders and readers take a forward name for an image)")


def _uses(ctx: Context, ins: n.Instruction) -> list[str]:
    """Variables an instruction reads: Dockerfile words by BuildKit's expansion rules, shell
    scripts by the shell parse (so single-quoted `$x` is not a use)."""
    from builder.lint.rules.buildkit import _words_of

    texts = _words_of(ins)
    out: list[str] = []
    if isinstance(ins, n.Run | n.Cmd | n.Entrypoint):
        if ins.command.exec_form:
            texts = texts + list(ins.command.argv)
        else:
            out += ctx.script(ins).variables
    for t in texts:
        out += var_refs(t, ctx.df.escape)
    return out


@rule("PB4003", W, "ARG used in a stage before it is declared there", source=PB,
      why="ARGs are scoped: a global ARG (before the first FROM) is visible only in FROM lines; "
          "inside a stage it is empty until `ARG NAME` re-declares it, and a stage ARG is "
          "empty above its declaration.",
      fix="Add `ARG NAME` in the stage, above the first use.",
      bad="ARG VERSION=1.2\nFROM alpine\nRUN echo $VERSION",
      good="ARG VERSION=1.2\nFROM alpine\nARG VERSION\nRUN echo $VERSION")
def arg_before_declared(ctx: Context) -> Iterator[Finding]:
    global_args: set[str] = set()
    for ins in ctx.df.instructions:
        if isinstance(ins, n.From):
            break
        if isinstance(ins, n.Arg):
            global_args |= {d.name for d in ins.decls}
    for s in ctx.stages:
        stage_args = {d.name for it in s.items if isinstance(it.instr, n.Arg)
                      for d in it.instr.decls}
        candidates = (global_args | stage_args) - BUILTIN_ARGS
        declared: set[str] = set()
        env: set[str] = set()
        reported: set[str] = set()
        for it in s.items:
            ins = it.instr
            if it.outer is not None:
                continue
            for name in _uses(ctx, ins):
                if name in candidates and name not in declared and name not in env \
                        and name not in reported:
                    reported.add(name)
                    where = ("declared before FROM but not re-declared in this stage"
                             if name not in stage_args else "declared later in this stage")
                    yield ctx.finding("PB4003", it, f"ARG {name} is used here but {where}; "
                                      "it expands to an empty string")
            if isinstance(ins, n.Arg):
                declared |= {d.name for d in ins.decls}
            elif isinstance(ins, n.Env):
                env |= {kv.key for kv in ins.pairs}


_INSTALLERS = {
    "npm": ("install", "ci", "i"), "yarn": ("install", ""), "pnpm": ("install", "i"),
    "pip": ("install",), "pip3": ("install",), "poetry": ("install",), "pipenv": ("install",),
    "uv": ("sync", "pip"), "bundle": ("install",), "composer": ("install",),
    "go": ("mod", "get", "build"), "cargo": ("build", "fetch"), "mvn": ("dependency:go-offline",
                                                                        "package", "install"),
    "gradle": ("build", "dependencies"), "dotnet": ("restore",), "mix": ("deps.get",),
}


def _copies_context(ins: n.Copy | n.Add) -> bool:
    return ins.flag("from") is None and not ins.heredocs and any(
        unquote(src).rstrip("/") in (".", "./", "") for src in ins.sources)


@rule("PB4004", N, "Dependencies installed after copying the whole build context", source=PB,
      why="`COPY . .` changes whenever any file changes, so every later step — including the "
          "slow dependency install — re-runs on every edit. Copy only the manifest (e.g. "
          "package.json, requirements.txt, go.mod) first, install, then copy the rest.",
      fix="COPY the dependency manifests, RUN the install, then `COPY . .`.",
      bad="COPY . .\nRUN npm ci", good="COPY package.json package-lock.json ./\nRUN npm ci\n"
      "COPY . .")
def cache_busting_order(ctx: Context) -> Iterator[Finding]:
    for s in ctx.stages:
        copied = None
        for it in s.items:
            ins = it.instr
            if it.outer is not None:
                continue
            if isinstance(ins, n.Copy | n.Add) and _copies_context(ins):
                copied = copied or it
            elif isinstance(ins, n.Run) and copied is not None:
                for c in ctx.script(ins).commands:
                    subs = _INSTALLERS.get(c.name.rsplit("/", 1)[-1])
                    if subs is None:
                        continue
                    first = next(iter(c.args_no_flags()), "")
                    if first in subs or (c.name == "yarn" and not c.args_no_flags()):
                        yield ctx.finding("PB4004", it, f"`{c.name} {first}`".replace(" `", "`")
                                          + f" runs after the whole context was copied (line "
                                          f"{copied.line}); copy the dependency manifests "
                                          "first so this layer stays cached")
                        break
                else:
                    continue
                break
