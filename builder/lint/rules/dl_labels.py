"""hadolint DL rules about LABEL keys and values, including the `label-schema` checks.

The schema (`label-schema: {name: text|url|spdx|rfc3339|hash|semver|email}`) and
`strict-labels` come from the configuration. Values are validated with real parsers where
one exists: SPDX expressions with `packaging.licenses` (the SPDX license list that pip
uses), URLs with urllib; RFC 3339 and SemVer 2.0.0 by their published grammars.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from builder.errors import Severity
from builder.lint.context import Context
from builder.lint.finding import Finding
from builder.lint.rule import rule
from builder.lint.rules.common import unquote
from builder.syntax import nodes as n

W, N, S = Severity.WARNING, Severity.INFO, Severity.STYLE

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def _bad_key(key: str) -> bool:
    return (not key or key[0] not in "abcdefghijklmnopqrstuvwxyz"
            or key[-1] not in "abcdefghijklmnopqrstuvwxyz0123456789"
            or any(c not in _KEY_CHARS for c in key)
            or key.startswith(("com.docker.", "io.docker.", "org.dockerproject."))
            or ".." in key or "--" in key)


def _labels(ctx: Context) -> Iterator[tuple[n.Label, object, list[tuple[str, str]]]]:
    for ins, it in ctx.each(n.Label, onbuild=False):
        yield ins, it, [(unquote(kv.key), unquote(kv.value)) for kv in ins.pairs]


@rule("DL3048", S, "Invalid label key.",
      why="Docker's label key convention: lower-case alphanumerics, dots and dashes, starting "
          "with a letter; the com.docker.*, io.docker.* and org.dockerproject.* namespaces are "
          "reserved.", fix="Use a reverse-DNS key such as `org.opencontainers.image.title`.",
      bad='LABEL My_Label="x"', good='LABEL org.example.my-label="x"')
def dl3048(ctx: Context) -> Iterator[Finding]:
    for _ins, it, pairs in _labels(ctx):
        if any(_bad_key(k) for k, _ in pairs):
            yield ctx.finding("DL3048", it)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _StageId:
    image: str
    alias: str | None
    line: int


@rule("DL3049", N, "Label `<label>` is missing.",
      why="The label schema lists labels every image must carry (ownership, source, version).",
      fix="Add the label to the stage (or to a stage it builds on).",
      bad="FROM debian:12", good='FROM debian:12\nLABEL org.opencontainers.image.source="…"')
def dl3049(ctx: Context) -> Iterator[Finding]:
    for label in ctx.config.label_schema:
        # hadolint's bookkeeping: a stage is good once it (or the stage it builds FROM) sets
        # the label; a stage only used by COPY --from, or whose name a labelled stage builds
        # on, is exempt.
        good: set[_StageId] = set()
        bad: set[_StageId] = set()
        current: _StageId | None = None

        def silence(name: str, bad: set[_StageId] = bad) -> None:
            for s in [s for s in bad if s.alias == name]:
                bad.discard(s)

        for it in ctx.items:
            ins = it.instr
            if isinstance(ins, n.From) and it.outer is None:
                current = _StageId(ins.image, ins.stage_name, ins.span.line)
                if any(g.alias is not None and g.alias == ins.image for g in good):
                    good.add(current)
                else:
                    bad.add(current)
            elif isinstance(ins, n.Copy):
                src = ins.flag("from")
                if src is not None and src.value:
                    silence(src.value)
            elif isinstance(ins, n.Label) and current is not None:
                if any(unquote(kv.key) == label for kv in ins.pairs):
                    silence(current.alias or current.image)
                    good.add(current)
                    bad.discard(current)
        for s in sorted(bad, key=lambda s: s.line):
            yield ctx.finding("DL3049", _from_at(ctx, s.line), f"Label `{label}` is missing.")


def _from_at(ctx: Context, line: int) -> n.Instruction:
    return next(i for i in ctx.df.instructions if i.span.line == line)


@rule("DL3050", N, "Superfluous label(s) present.",
      why="With `strict-labels`, only labels in the schema are allowed.",
      fix="Remove the label or add it to `label-schema`.",
      bad='LABEL other="x"', good='LABEL org.opencontainers.image.version="1.0.0"')
def dl3050(ctx: Context) -> Iterator[Finding]:
    if not ctx.config.strict_labels:
        return
    schema = ctx.config.label_schema
    for _ins, it, pairs in _labels(ctx):
        if any(k not in schema for k, _ in pairs):
            yield ctx.finding("DL3050", it)  # type: ignore[arg-type]


def _schema_rule(ctx: Context, code: str, kind: str | None, message: str,
                 valid: object) -> Iterator[Finding]:
    names = [k for k, v in ctx.config.label_schema.items() if kind is None or v == kind]
    for name in names:
        for _ins, it, pairs in _labels(ctx):
            if any(k == name and not valid(v) for k, v in pairs):  # type: ignore[operator]
                yield ctx.finding(code, it, message.format(name))  # type: ignore[arg-type]


@rule("DL3051", W, "label `<label>` is empty.",
      why="An empty schema label carries no information.", fix="Give it a value.",
      bad='LABEL org.opencontainers.image.version=""',
      good='LABEL org.opencontainers.image.version="1.0.0"')
def dl3051(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3051", None, "label `{}` is empty.", lambda v: v != "")


def is_url(v: str) -> bool:
    try:
        parts = urlsplit(v)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc or parts.path) and " " not in v \
        and parts.scheme.isascii() and ":" in v


@rule("DL3052", W, "Label `<label>` is not a valid URL.",
      why="The schema says this label holds a URL.", fix="Use an absolute URL.",
      bad='LABEL org.opencontainers.image.url="example"',
      good='LABEL org.opencontainers.image.url="https://example.com"')
def dl3052(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3052", "url", "Label `{}` is not a valid URL.", is_url)


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_rfc3339(v: str) -> bool:
    if not _RFC3339.match(v):
        return False
    from datetime import datetime

    try:
        datetime.fromisoformat(v.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


@rule("DL3053", W, "Label `<label>` is not a valid time format - must conform to RFC3339.",
      why="The schema says this label holds a timestamp (e.g. "
          "org.opencontainers.image.created).", fix="Use RFC 3339: `2024-05-01T12:00:00Z`.",
      bad='LABEL org.opencontainers.image.created="yesterday"',
      good='LABEL org.opencontainers.image.created="2024-05-01T12:00:00Z"')
def dl3053(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3053", "rfc3339",
                        "Label `{}` is not a valid time format - must conform to RFC3339.",
                        is_rfc3339)


def is_spdx(v: str) -> bool:
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    try:
        canonicalize_license_expression(v)
    except InvalidLicenseExpression:
        return False
    return bool(v.strip())


@rule("DL3054", W, "Label `<label>` is not a valid SPDX identifier.",
      why="The schema says this label holds an SPDX license expression.",
      fix="Use an SPDX identifier such as `Apache-2.0`.",
      bad='LABEL org.opencontainers.image.licenses="apache"',
      good='LABEL org.opencontainers.image.licenses="Apache-2.0"')
def dl3054(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3054", "spdx", "Label `{}` is not a valid SPDX identifier.",
                        is_spdx)


def is_git_hash(v: str) -> bool:
    return 7 <= len(v) <= 40 and all(c in "0123456789abcdefABCDEF" for c in v)


@rule("DL3055", W, "Label `<label>` is not a valid git hash.",
      why="The schema says this label holds a commit id.", fix="Use the full or short SHA-1.",
      bad='LABEL org.opencontainers.image.revision="main"',
      good='LABEL org.opencontainers.image.revision="43c572f"')
def dl3055(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3055", "hash", "Label `{}` is not a valid git hash.",
                        is_git_hash)


# https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")


@rule("DL3056", W, "Label `<label>` does not conform to semantic versioning.",
      why="The schema says this label holds a SemVer 2.0.0 version.",
      fix="Use `MAJOR.MINOR.PATCH`.",
      bad='LABEL org.opencontainers.image.version="v1"',
      good='LABEL org.opencontainers.image.version="1.0.0"')
def dl3056(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3056", "semver",
                        "Label `{}` does not conform to semantic versioning.",
                        lambda v: bool(_SEMVER.match(v)))


_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_EMAIL_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def is_email(v: str) -> bool:
    local, at, domain = v.rpartition("@")
    return bool(at) and bool(_EMAIL_LOCAL.match(local)) and bool(_EMAIL_DOMAIN.match(domain)) \
        and not local.startswith(".") and ".." not in local


@rule("DL3058", W, "Label `<label>` is not a valid email format - must conform to RFC5322.",
      why="The schema says this label holds an e-mail address.", fix="Use `name@example.com`.",
      bad='LABEL maintainer="jane"', good='LABEL maintainer="jane@example.com"')
def dl3058(ctx: Context) -> Iterator[Finding]:
    return _schema_rule(ctx, "DL3058", "email",
                        "Label `{}` is not a valid email format - must conform to RFC5322.",
                        is_email)
