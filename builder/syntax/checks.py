"""The strict checks: instruction shapes BuildKit's parser accepts but its instruction layer
(frontend/dockerfile/instructions/parse.go) rejects — unknown instructions and flags,
missing or surplus arguments, bad stage names, HEALTHCHECK types, ONBUILD triggers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from builder.syntax import codes, nodes
from builder.syntax.prepass import heredoc_markers

if TYPE_CHECKING:
    from builder.syntax.parser import Raw, _Context

# Flags each instruction accepts (BuildKit's instructions/parse.go, dockerfile v1 labs
# included), and which of them are booleans that may stand alone (`--link`).
FLAGS: dict[str, tuple[str, ...]] = {
    "FROM": ("platform",),
    "RUN": ("mount", "network", "security", "device"),
    "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "link", "keep-git-dir", "checksum", "exclude", "unpack"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}
BOOL_FLAGS = frozenset({"link", "parents", "keep-git-dir", "unpack"})
# BuildKit's stage-name rule (instructions/parse.go validateDefinitionDescription/stageName).
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
# (RUN, CMD and ENTRYPOINT may be empty in BuildKit: no argument check there.)
_AT_LEAST_ONE = ("ARG", "ENV", "EXPOSE", "LABEL", "VOLUME", "SHELL", "HEALTHCHECK", "FROM")
_EXACTLY_ONE = ("USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER")


def check(node: nodes.Instruction, raw: Raw, ctx: _Context) -> None:
    """Raise DockerfileError when `node` is not a valid instruction."""
    kw = node.keyword
    at = raw.start
    if kw not in nodes.INSTRUCTIONS:
        import difflib  # only for this error's hint; keeps start-up lean

        guess = difflib.get_close_matches(kw, list(nodes.INSTRUCTIONS), n=1, cutoff=0.6)
        hint = f"did you mean {guess[0]}?" if guess else (
            "instructions are " + ", ".join(sorted(nodes.INSTRUCTIONS)))
        what = f"unknown instruction: {raw.written}" if raw.written else "empty instruction"
        raise ctx.error(codes.UNKNOWN_INSTRUCTION, what, at, at + len(raw.written), hint)
    if not (kw == "HEALTHCHECK" and raw.args and raw.args[0].upper() == "NONE"):
        _check_flags(node, raw, ctx)  # BuildKit never parses the flags of HEALTHCHECK NONE
    args = raw.args
    end = at + len(raw.written)
    if kw in _AT_LEAST_ONE and not args and not node.heredocs:
        raise ctx.error(codes.MISSING_ARGUMENTS, f"{kw} requires at least one argument",
                        at, end)
    if kw in ("COPY", "ADD"):
        if len(args) < 2:
            raise ctx.error(codes.MISSING_ARGUMENTS,
                            f"{kw} requires at least two arguments, but only one was provided. "
                            "Destination could not be determined",
                            at, end, f"write `{kw} <source>... <destination>`")
        if heredoc_markers(args[-1]) and not raw.json:
            off = raw.offsets[-1]
            raise ctx.error(codes.HEREDOC_DESTINATION,
                            f"{kw} cannot accept a heredoc as a destination", off,
                            off + len(args[-1]), "put the here-document before the destination")
    if kw in _EXACTLY_ONE and not args:
        raise ctx.error(codes.MISSING_ARGUMENTS, f"{kw} requires exactly one argument", at, end)
    if kw == "FROM":
        _check_from(node, raw, ctx)
    elif kw == "SHELL" and not raw.json:
        raise ctx.error(codes.SHELL_NOT_JSON, "SHELL requires the arguments to be in JSON form",
                        raw.rest_offset, raw.rest_offset + len(raw.rest),
                        'write e.g. SHELL ["/bin/sh", "-c"]')
    elif kw in ("ENV", "LABEL"):
        for pair in getattr(node, "pairs", ()):
            if pair.key == "":
                raise ctx.error(codes.EMPTY_NAME, f"{kw} names can not be blank",
                                raw.rest_offset, raw.rest_offset + len(raw.rest))
    elif kw == "ARG":
        for decl, off in zip(getattr(node, "decls", ()), raw.offsets, strict=False):
            if decl.name == "":
                raise ctx.error(codes.EMPTY_NAME, "ARG names can not be blank", off,
                                off + 1, "write `ARG name` or `ARG name=default`")
    elif kw == "VOLUME":
        for path, off in zip(args, raw.offsets, strict=True):
            if path.strip(" \t\n\v\f\r") == "":
                raise ctx.error(codes.EMPTY_NAME, "VOLUME specified can not be an empty string",
                                off, off + 1)
    elif kw == "HEALTHCHECK":
        _check_healthcheck(raw, ctx)
    elif kw == "ONBUILD":
        _check_onbuild(node, raw, ctx)


def _check_flags(node: nodes.Instruction, raw: Raw, ctx: _Context) -> None:
    allowed = FLAGS.get(node.keyword, ())
    for flag, (_, start, end) in zip(node.flags, raw.flags, strict=True):
        if flag.name not in allowed:
            hint = (f"{node.keyword} accepts " + ", ".join(f"--{a}" for a in allowed)
                    if allowed else f"{node.keyword} takes no flags")
            raise ctx.error(codes.UNKNOWN_FLAG, f"unknown flag: --{flag.name}", start, end, hint)
        if flag.value is None and flag.name not in BOOL_FLAGS:
            raise ctx.error(codes.FLAG_VALUE, f"missing a value on flag: --{flag.name}",
                            start, end, f"write --{flag.name}=<value>")
        if flag.name in BOOL_FLAGS and flag.value not in (None, "true", "false"):
            raise ctx.error(codes.FLAG_VALUE,
                            f"expecting boolean value for flag --{flag.name}, not: {flag.value}",
                            start, end, f"write --{flag.name} or --{flag.name}=false")


def _check_from(node: nodes.Instruction, raw: Raw, ctx: _Context) -> None:
    args = raw.args
    if len(args) == 2 or len(args) > 3 or (len(args) == 3 and args[1].lower() != "as"):
        raise ctx.error(codes.FROM_ARGUMENTS, "FROM requires either one or three arguments",
                        raw.rest_offset, raw.rest_offset + len(raw.rest),
                        "write `FROM <image> [AS <name>]`")
    stage = getattr(node, "stage_name", None)
    if stage is not None and not _STAGE_NAME.fullmatch(stage.lower()):
        off = raw.offsets[2]
        raise ctx.error(codes.STAGE_NAME,
                        f"invalid name for build stage: {stage!r}, name can't start with a "
                        "number or contain symbols", off, off + len(stage),
                        "stage names match [a-z][a-z0-9-_.]*")


def _check_healthcheck(raw: Raw, ctx: _Context) -> None:
    typ = raw.args[0].upper()
    off = raw.offsets[0]
    if typ == "NONE":
        if len(raw.args) > 1:
            raise ctx.error(codes.HEALTHCHECK_TYPE, "HEALTHCHECK NONE takes no arguments",
                            off, raw.rest_offset + len(raw.rest))
    elif typ == "CMD":
        if len(raw.args) < 2:
            raise ctx.error(codes.MISSING_ARGUMENTS, "Missing command after HEALTHCHECK CMD",
                            off, off + 3, "write e.g. HEALTHCHECK CMD curl -f http://localhost/")
    else:
        raise ctx.error(codes.HEALTHCHECK_TYPE,
                        f"Unknown type {raw.args[0]!r} in HEALTHCHECK (try CMD)",
                        off, off + len(raw.args[0]), "use HEALTHCHECK CMD … or HEALTHCHECK NONE")


def _check_onbuild(node: nodes.Instruction, raw: Raw, ctx: _Context) -> None:
    inner = raw.inner
    if inner is None:
        raise ctx.error(codes.MISSING_ARGUMENTS, "ONBUILD requires at least one argument",
                        raw.start, raw.start + len(raw.written),
                        "write `ONBUILD <instruction>`, e.g. ONBUILD COPY . /app")
    if inner.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        what = ("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed" if inner.keyword == "ONBUILD"
                else f"{inner.keyword} isn't allowed as an ONBUILD trigger")
        raise ctx.error(codes.ONBUILD_TRIGGER, what, inner.start,
                        inner.start + len(inner.written))
    # The trigger itself is not checked: BuildKit stores it as text and only parses it when
    # a child image is built FROM this one (the front end re-parses it there).
