"""BuildKit's build checks, by BuildKit's names and messages
(https://docs.docker.com/reference/build-checks/), so `# check=skip=…;error=true` works the
same under pybuild. Each check reports at the instruction it concerns.

Static limits, stated once: UndefinedVar cannot see the base image's environment (BuildKit
reads the pulled image config), so it reports only in stages whose ancestry starts at
`scratch` or when the name is a likely typo of a defined variable. CopyIgnoredFile needs the
build context and is left to `pybuild build --check`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from builder.errors import Severity
from builder.lint.context import Context
from builder.lint.finding import Finding
from builder.lint.rule import rule
from builder.lint.rules.common import declared_names, unquote
from builder.syntax import nodes as n

W, N = Severity.WARNING, Severity.INFO
BK = "buildkit"

# Automatic platform ARGs BuildKit defines in the global scope.
BUILTIN_ARGS = frozenset({
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT", "TARGETPLATFORM", "TARGETOS",
    "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE", "BUILDKIT_SYNTAX", "HTTP_PROXY",
    "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
    "ftp_proxy", "no_proxy", "all_proxy", "SOURCE_DATE_EPOCH"})
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")


def var_refs(text: str, escape: str = "\\") -> tuple[str, ...]:
    """Names referenced as `$x`/`${x…}` in a Dockerfile word (escaped `\\$` skipped;
    single-quoted text does not expand in BuildKit's word expansion)."""
    if "$" not in text:
        return ()
    return _var_refs(text, escape)


@lru_cache(maxsize=8192)
def _var_refs(text: str, escape: str) -> tuple[str, ...]:
    out: list[str] = []
    i, quote = 0, None
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'":
            i += 2
            continue
        if c in "\"'" and (quote is None or quote == c):
            quote = None if quote else c
        elif c == "$" and quote != "'":
            m = _REF.match(text, i)
            if m:
                out.append(m.group(1) or m.group(2))
                i = m.end()
                continue
        i += 1
    return tuple(out)


@rule("StageNameCasing", W, "Stage names should be lowercase", source=BK,
      why="Stage names are case-insensitive in BuildKit and lower-cased internally; mixed case "
          "reads as if it mattered.", fix="Lower-case the stage name.",
      bad="FROM alpine AS BuilderBase", good="FROM alpine AS builder-base", fixable=True)
def stage_name_casing(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        if ins.stage_name and ins.stage_name != ins.stage_name.lower():
            yield ctx.finding("StageNameCasing", it,
                              f"Stage name '{ins.stage_name}' should be lowercase")


@rule("FromAsCasing", W, "The 'as' keyword should match the case of the 'from' keyword",
      source=BK, why="Mixed keyword casing is harder to read and search.",
      fix="Write `FROM … AS …` or `from … as …`.", bad="FROM debian:12 as builder",
      good="FROM debian:12 AS builder", fixable=True)
def from_as_casing(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        asw = ins.as_written
        if not asw:
            continue
        lower = ins.written == ins.written.lower()
        if asw != (asw.lower() if lower else asw.upper()):
            yield ctx.finding("FromAsCasing", it,
                              f"'{asw}' and '{ins.written}' keywords' casing do not match")


@rule("NoEmptyContinuation", W, "Empty continuation lines will become errors in a future release",
      source=BK, why="A blank line inside a `\\` continuation is silently skipped today and "
      "will be a syntax error later.", fix="Remove the blank line (or end the instruction).",
      bad="RUN apk add \\\n\n    curl", good="RUN apk add \\\n    curl")
def no_empty_continuation(ctx: Context) -> Iterator[Finding]:
    lines = ctx.df.text.split("\n")
    for ins in ctx.df.instructions:
        if ins.span.end_line <= ins.span.line:
            continue
        body_end = ins.span.end_line
        if ins.heredocs:
            continue  # blank lines in here-documents are content
        for ln in range(ins.span.line + 1, body_end):
            if ln - 1 < len(lines) and not lines[ln - 1].strip():
                yield ctx.finding("NoEmptyContinuation", ins, "Empty continuation line")
                break


@rule("ConsistentInstructionCasing", W, "All commands within the Dockerfile should use the same "
      "casing (either upper or lower)", source=BK,
      why="Consistent keyword casing keeps the file readable and greppable.",
      fix="Use the majority casing for every instruction (`pybuild lint --fix` does it).",
      bad="FROM alpine\nrun echo hi", good="FROM alpine\nRUN echo hi", fixable=True)
def consistent_casing(ctx: Context) -> Iterator[Finding]:
    words = [i.written for i in ctx.df.instructions]
    upper = sum(1 for w in words if w == w.upper())
    lower = sum(1 for w in words if w == w.lower())
    majority = "uppercase" if upper >= lower else "lowercase"
    for ins in ctx.df.instructions:
        w = ins.written
        ok = w == w.upper() if majority == "uppercase" else w == w.lower()
        if not ok:
            yield ctx.finding("ConsistentInstructionCasing", ins,
                              f"Command '{w}' should match the case of the command majority "
                              f"({majority})")


@rule("DuplicateStageName", W, "Stage names should be unique", source=BK,
      why="A second stage with the same name makes `--from` and `--target` ambiguous.",
      fix="Rename one of the stages.", bad="FROM a AS x\nFROM b AS x",
      good="FROM a AS x\nFROM b AS y")
def duplicate_stage_name(ctx: Context) -> Iterator[Finding]:
    seen: set[str] = set()
    for ins, it in ctx.each(n.From, onbuild=False):
        if ins.stage_name:
            key = ins.stage_name.lower()
            if key in seen:
                yield ctx.finding("DuplicateStageName", it, f'Duplicate stage name "{key}", '
                                  "stage names should be unique")
            seen.add(key)


@rule("ReservedStageName", W, "Reserved words should not be used as stage names", source=BK,
      why="`scratch` and `context` already mean something in FROM and COPY --from.",
      fix="Pick another name.", bad="FROM alpine AS scratch", good="FROM alpine AS base")
def reserved_stage_name(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        if ins.stage_name and ins.stage_name.lower() in ("scratch", "context"):
            yield ctx.finding("ReservedStageName", it, "Stage name should not use the same "
                              f'name as reserved stage "{ins.stage_name.lower()}"')


@rule("JSONArgsRecommended", W, "JSON arguments recommended for ENTRYPOINT/CMD to prevent "
      "unintended behavior related to OS signals", source=BK,
      why="Shell form wraps the process in `/bin/sh -c`, which does not forward SIGTERM.",
      fix="Use the exec form.", bad="CMD nginx -g 'daemon off;'",
      good='CMD ["nginx", "-g", "daemon off;"]')
def json_args(ctx: Context) -> Iterator[Finding]:
    for it in ctx.items:
        ins = it.instr
        if isinstance(ins, n.Cmd | n.Entrypoint) and not ins.command.exec_form \
                and it.outer is None:
            yield ctx.finding("JSONArgsRecommended", it, f"JSON arguments recommended for "
                              f"{ins.keyword} to prevent unintended behavior related to OS "
                              "signals")


@rule("MaintainerDeprecated", W, "The MAINTAINER instruction is deprecated, use a label instead "
      "to define an image author", source=BK,
      why="MAINTAINER is deprecated; the OCI label carries the same information.",
      fix="`LABEL org.opencontainers.image.authors=…` (`pybuild lint --fix`).",
      bad="MAINTAINER jane@example.com",
      good='LABEL org.opencontainers.image.authors="jane@example.com"', fixable=True)
def maintainer_deprecated(ctx: Context) -> Iterator[Finding]:
    for _ins, it in ctx.each(n.Maintainer):
        yield ctx.finding("MaintainerDeprecated", it,
                          "Maintainer instruction is deprecated in favor of using label")


def _global_args(ctx: Context) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for ins in ctx.df.instructions:
        if isinstance(ins, n.From):
            break
        if isinstance(ins, n.Arg):
            for d in ins.decls:
                out[d.name] = d.default
    return out


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (BuildKit suggests names within a small edit distance)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _suggest(name: str, candidates: set[str]) -> str:
    """The closest candidate one edit away (case-insensitive match counts as one), if any."""
    best = sorted(c for c in candidates if c != name and (
        c.lower() == name.lower() or (len(name) >= 4 and _distance(c, name) <= 1)))
    return best[0] if best else ""


@rule("UndefinedArgInFrom", W, "FROM command must use declared ARGs", source=BK,
      why="An undeclared ARG in FROM expands to the empty string.",
      fix="Declare the ARG before the first FROM.", bad="FROM alpine:${VERSION}",
      good="ARG VERSION=3.20\nFROM alpine:${VERSION}")
def undefined_arg_in_from(ctx: Context) -> Iterator[Finding]:
    declared = set(_global_args(ctx)) | BUILTIN_ARGS
    for ins, it in ctx.each(n.From, onbuild=False):
        texts = [ins.image] + [f.value or "" for f in ins.flags]
        for t in texts:
            for name in var_refs(t, ctx.df.escape):
                if name not in declared:
                    hint = _suggest(name, declared)
                    msg = f"FROM argument '{name}' is not declared"
                    if hint:
                        msg += f" (did you mean {hint}?)"
                    yield ctx.finding("UndefinedArgInFrom", it, msg)


@rule("WorkdirRelativePath", W, "Relative workdir without an absolute workdir declared within "
      "the build can have unexpected results if the base image changes", source=BK,
      why="A relative WORKDIR builds on the base image's working directory.",
      fix="Use an absolute path, or set one earlier in the stage.", bad="FROM alpine\n"
      "WORKDIR app", good="FROM alpine\nWORKDIR /app")
def workdir_relative(ctx: Context) -> Iterator[Finding]:
    absolute = False
    for it in ctx.items:
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            absolute = False
        elif isinstance(ins, n.Workdir) and it.outer is None:
            p = unquote(ins.path)
            if p.startswith(("/", "$")) or re.match(r"^[A-Za-z]:[\\/]", p):
                absolute = True
            elif not absolute:
                yield ctx.finding("WorkdirRelativePath", it, f'Relative workdir "{ins.path}" '
                                  "can have unexpected results if the base image changes")


_ALWAYS_DEFINED = frozenset({"PATH", "HOME", "HOSTNAME", "TERM"})


def _words_of(ins: n.Instruction) -> list[str]:
    """The texts of an instruction that BuildKit expands with build variables (shell-form
    commands are left to the shell, so they are not among them)."""
    if isinstance(ins, n.Copy | n.Add):
        return [*ins.sources, ins.dest] + [f.value or "" for f in ins.flags]
    if isinstance(ins, n.Env | n.Label):
        return [kv.key + "=" + kv.value for kv in ins.pairs]
    if isinstance(ins, n.Arg):
        return [d.default or "" for d in ins.decls]
    if isinstance(ins, n.Workdir):
        return [ins.path]
    if isinstance(ins, n.User):
        return [ins.user]
    if isinstance(ins, n.Expose):
        return list(ins.ports)
    if isinstance(ins, n.Volume):
        return list(ins.paths)
    if isinstance(ins, n.Stopsignal):
        return [ins.signal]
    if isinstance(ins, n.Run):
        return [f.value or "" for f in ins.flags]
    return []


@rule("UndefinedVar", W, "Variables should be defined before their use", source=BK,
      why="An undefined variable expands to the empty string, usually from a typo.",
      fix="Declare it with ARG or ENV first, or fix the name.",
      bad="FROM scratch\nCOPY $foo .", good="FROM scratch\nARG foo\nCOPY $foo .")
def undefined_var(ctx: Context) -> Iterator[Finding]:
    global_args = set(_global_args(ctx))
    stage_vars: dict[str, set[str]] = {}
    from_scratch: dict[str, bool] = {}
    defined: set[str] = set()
    scratch = False
    for it in ctx.items:
        ins = it.instr
        if it.outer is not None:
            continue
        if isinstance(ins, n.From):
            base = ins.image
            defined = set(stage_vars.get(base, set())) | BUILTIN_ARGS | _ALWAYS_DEFINED
            scratch = from_scratch.get(base, base == "scratch")
            key = (ins.stage_name or "").lower() or f"#{ins.span.line}"
            stage_vars[key] = defined
            from_scratch[key] = scratch
            continue
        if not ctx.stages:
            continue
        for text in _words_of(ins):
            for name in var_refs(text, ctx.df.escape):
                if name in defined:
                    continue
                hint = _suggest(name, defined - BUILTIN_ARGS - _ALWAYS_DEFINED)
                if not scratch and not hint:
                    continue  # the base image's environment may define it
                if name in global_args and not hint:
                    continue  # reported as PB4003 (global ARG not re-declared)
                msg = f"Usage of undefined variable '${name}'"
                if hint:
                    msg += f" (did you mean ${hint}?)"
                yield ctx.finding("UndefinedVar", it, msg)
        if isinstance(ins, n.Arg):
            defined |= {d.name for d in ins.decls}
        elif isinstance(ins, n.Env):
            defined |= {kv.key for kv in ins.pairs}


@rule("MultipleInstructionsDisallowed", W, "Multiple instructions of the same type should not "
      "be used in the same stage", source=BK,
      why="Only the last CMD, ENTRYPOINT or HEALTHCHECK of a stage takes effect.",
      fix="Keep the last one.", bad="CMD a\nCMD b", good='CMD ["b"]')
def multiple_instructions(ctx: Context) -> Iterator[Finding]:
    for stage in ctx.stages:
        for kind in (n.Cmd, n.Entrypoint, n.Healthcheck):
            found = [i for i in stage.items if isinstance(i.instr, kind) and i.outer is None]
            for it in found[:-1]:
                yield ctx.finding("MultipleInstructionsDisallowed", it,
                                  f"Multiple {it.instr.keyword} instructions should not be used "
                                  "in the same stage because only the last one will be used")


@rule("LegacyKeyValueFormat", W, "Legacy key/value format with whitespace separator should not "
      "be used", source=BK,
      why="`ENV key value` sets one variable to everything after the key — easy to misread and "
          "impossible to extend.", fix="Write `ENV key=value` (`pybuild lint --fix`).",
      bad="ENV APP_HOME /app", good="ENV APP_HOME=/app", fixable=True)
def legacy_key_value(ctx: Context) -> Iterator[Finding]:
    for it in ctx.items:
        ins = it.instr
        if isinstance(ins, n.Env | n.Label) and any(kv.legacy for kv in ins.pairs):
            kw = ins.keyword
            yield ctx.finding("LegacyKeyValueFormat", it, f'"{kw} key=value" should be used '
                              f'instead of legacy "{kw} key value" format')


@rule("RedundantTargetPlatform", W, "Setting platform to predefined $TARGETPLATFORM in FROM is "
      "redundant as this is the default behavior", source=BK,
      why="FROM already resolves images for the target platform.", fix="Drop the flag.",
      bad="FROM --platform=$TARGETPLATFORM alpine", good="FROM alpine")
def redundant_target_platform(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        f = ins.flag("platform")
        if f is not None and f.value in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
            yield ctx.finding("RedundantTargetPlatform", it, f"Setting platform to predefined "
                              f"{f.value} in FROM is redundant as this is the default behavior")


# BuildKit's heuristic: a name token (split on `_`) that is a secret word, unless "public".
_SECRET = re.compile(r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|"
                     r"passwd|secret|token)(?:_|$)")
_PUBLIC = re.compile(r"(?i)(?:_|^)public(?:_|$)")


@rule("SecretsUsedInArgOrEnv", W, "Sensitive data should not be used in the ARG or ENV "
      "commands", source=BK,
      why="ARG and ENV values persist in the image config and history.",
      fix="Use `RUN --mount=type=secret`.", bad="ARG API_TOKEN",
      good="RUN --mount=type=secret,id=api_token ./deploy.sh")
def secrets_in_arg_env(ctx: Context) -> Iterator[Finding]:
    for it in ctx.items:
        names = declared_names(it.instr)
        for name in names:
            if _SECRET.search(name) and not _PUBLIC.search(name):
                yield ctx.finding("SecretsUsedInArgOrEnv", it, "Do not use ARG or ENV "
                                  f'instructions for sensitive data ({it.instr.keyword} "{name}")')


def _expand_defaults(text: str, args: dict[str, str | None]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return args.get(name) or ""
    return _REF.sub(sub, text)


@rule("InvalidDefaultArgInFrom", W, "Default value for global ARG results in an empty or "
      "invalid base image name", source=BK,
      why="Building without --build-arg would fail with an invalid image reference.",
      fix="Give the ARG a default that makes a valid image.", bad="ARG TAG\nFROM alpine:${TAG}",
      good="ARG TAG=3.20\nFROM alpine:${TAG}")
def invalid_default_arg(ctx: Context) -> Iterator[Finding]:
    args = _global_args(ctx)
    for ins, it in ctx.each(n.From, onbuild=False):
        if "$" not in ins.image:
            continue
        refs = var_refs(ins.image, ctx.df.escape)
        if any(r in BUILTIN_ARGS for r in refs):
            continue
        img = _expand_defaults(ins.image, args)
        if not img or img.endswith((":", "@", "/")) or img.startswith((":", "@", "/")) \
                or "/:" in img or "//" in img:
            yield ctx.finding("InvalidDefaultArgInFrom", it, "Default value for ARG "
                              f"{ins.image} results in empty or invalid base image name")


@rule("FromPlatformFlagConstDisallowed", W, "FROM --platform flag should not use a constant "
      "value", source=BK,
      why="A constant platform pins the stage to one architecture and breaks multi-platform "
          "builds.", fix="Use `$BUILDPLATFORM` or `$TARGETPLATFORM`.",
      bad="FROM --platform=linux/amd64 alpine", good="FROM --platform=$BUILDPLATFORM alpine")
def from_platform_const(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        f = ins.flag("platform")
        if f is None or not f.value or "$" in f.value:
            continue
        # BuildKit allows it when the stage name names the platform (e.g. build-amd64).
        parts = [p for p in re.split(r"[/,]", f.value) if p]
        name = (ins.stage_name or "").lower()
        if name and any(p.lower() in name for p in parts[1:]):
            continue
        yield ctx.finding("FromPlatformFlagConstDisallowed", it,
                          f'FROM --platform flag should not use constant value "{f.value}"')


@rule("InvalidDefinitionDescription", N, "Comment for build stage or argument should follow the "
      "format: `# <arg/stage name> <description>`", source=BK, default_enabled=False,
      why="BuildKit reads a comment right above FROM/ARG as its description (shown by "
          "`docker buildx build --call outline`).",
      fix="Start the comment with the name, or separate it with a blank line.",
      bad="# compiles the app\nFROM golang:1.22 AS build",
      good="# build compiles the app\nFROM golang:1.22 AS build")
def invalid_definition_description(ctx: Context) -> Iterator[Finding]:
    by_line = {c.span.line: c.text.strip() for c in ctx.df.comments}
    for ins in ctx.df.instructions:
        keys: list[str] = []
        what = ""
        if isinstance(ins, n.From) and ins.stage_name:
            keys, what = [ins.stage_name], "FROM"
        elif isinstance(ins, n.Arg):
            keys, what = [d.name for d in ins.decls], "ARG"
        text = by_line.get(ins.span.line - 1)
        if not keys or not text:
            continue
        if text.split(" ")[0] in keys:
            continue
        key = keys[0] if len(keys) == 1 else "<arg_key>"
        yield ctx.finding("InvalidDefinitionDescription", ins,
                          f"Comment for {what} should follow the format: `# {key} <description>`")


@rule("ExposeProtoCasing", W, "Protocol in EXPOSE instruction should be lowercase", source=BK,
      why="Protocols are `tcp`/`udp`; upper case is accepted but inconsistent.",
      fix="Lower-case the protocol.", bad="EXPOSE 80/TCP", good="EXPOSE 80/tcp", fixable=True)
def expose_proto_casing(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Expose, onbuild=False):
        for p in ins.ports:
            _, slash, proto = p.partition("/")
            if slash and proto != proto.lower():
                yield ctx.finding("ExposeProtoCasing", it, f"Defined protocol '{p}' in EXPOSE "
                                  "instruction should be lowercase")


@rule("ExposeInvalidFormat", W, "IP address and host-port mapping should not be used in EXPOSE "
      "instruction. This will become an error in a future release", source=BK,
      why="EXPOSE documents container ports; host addresses and mappings belong to "
          "`docker run -p`.", fix="Expose only the container port.",
      bad="EXPOSE 127.0.0.1:80:80", good="EXPOSE 80")
def expose_invalid_format(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Expose, onbuild=False):
        for p in ins.ports:
            if ":" in p.split("/", 1)[0] and not p.startswith("$"):
                yield ctx.finding("ExposeInvalidFormat", it, "EXPOSE instruction should not "
                                  f"define an IP address or host-port mapping, found '{p}'")


@rule("CopyIgnoredFile", W, "Attempting to Copy file that is excluded by .dockerignore",
      source=BK, default_enabled=False,
      why="A source excluded by .dockerignore is not in the build context: the COPY fails, "
          "or copies less than it says. (Experimental in BuildKit too: enable with "
          "`# check=experimental=CopyIgnoredFile` or `--enable CopyIgnoredFile`.)",
      fix="Stop ignoring the file, or stop copying it.",
      bad="# .dockerignore: *.md\nCOPY README.md /docs/", good="COPY src/ /app/src/")
def copy_ignored_file(ctx: Context) -> Iterator[Finding]:
    patterns = ctx.config.dockerignore
    if not patterns:
        return
    from builder.frontend.dockerignore import BadPattern, PatternMatcher

    try:
        matcher = PatternMatcher(list(patterns))
    except BadPattern:
        return
    for it in ctx.items:
        ins = it.instr
        if not isinstance(ins, n.Copy | n.Add) or ins.flag("from") is not None or ins.heredocs:
            continue
        for src in ins.sources:
            path = unquote(src)
            if "$" in path or path.startswith(("http://", "https://", "git@")):
                continue
            clean = path.lstrip("/")
            while clean.startswith("./"):
                clean = clean[2:]
            if not clean or clean == ".":
                continue
            try:
                hit = matcher.matches_or_parent_matches(clean)
            except BadPattern:
                return
            if hit:
                verb = "Copy" if isinstance(ins, n.Copy) else "Add"
                yield ctx.finding("CopyIgnoredFile", it, f"Attempting to {verb} file "
                                  f'"{path}" that is excluded by .dockerignore')
