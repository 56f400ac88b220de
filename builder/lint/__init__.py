"""The linter: rules over the Dockerfile AST (and the stage structure) → findings.

Public API (used by `pybuild lint` and by `pybuild build` to report warnings):
- `lint(dockerfile, config) -> list[Finding]`: all findings, sorted by line, after config
  and in-file suppressions (`# hadolint ignore=`, `# check=skip=`) were applied.
- `lint_text(text, path, config)`: parse then lint; raises `DockerfileError` (exit 3) when the
  text is not a Dockerfile.
- `RULES`: every known rule by code (metadata for docs and `--list-rules`).
"""

from __future__ import annotations

from dataclasses import replace

from builder.errors import PybuildError, Severity
from builder.lint import rules as _rules  # noqa: F401  (registers every rule)
from builder.lint.config import LintConfig
from builder.lint.context import Context
from builder.lint.finding import Finding
from builder.lint.pragmas import collect
from builder.lint.rule import REGISTRY as RULES
from builder.lint.rule import Rule
from builder.syntax import nodes as n

__all__ = ["Finding", "LintConfig", "Rule", "RULES", "lint", "lint_text", "enabled_rules",
           "parse_for_lint"]


def enabled_rules(config: LintConfig, experimental: frozenset[str] = frozenset()
                  ) -> list[Rule]:
    """Rules that run under `config` (default-on rules not ignored, plus enabled ones, plus
    BuildKit checks a `# check=experimental=` directive turns on)."""
    def on(r: Rule) -> bool:
        if r.default_enabled or r.code in config.enabled:
            return True
        return r.source == "buildkit" and (r.code in experimental or "all" in experimental)
    return [r for r in RULES.values() if on(r) and r.code not in config.ignored]


def lint(dockerfile: n.Dockerfile, config: LintConfig | None = None) -> list[Finding]:
    """Lint a parsed Dockerfile. Pure: no I/O except `--shellcheck`, which runs shellcheck."""
    config = config or LintConfig()
    ctx = Context(dockerfile, config)
    pragmas = collect(dockerfile)
    findings: list[Finding] = []
    for r in enabled_rules(config, frozenset(pragmas.check_experimental)):
        try:
            produced = list(r.check(ctx))
        except Exception as exc:  # a bug in one rule must not surface as a traceback
            raise PybuildError(f"internal error in lint rule {r.code} on {dockerfile.path}: "
                               f"{type(exc).__name__}: {exc}",
                               hint=f"skip the rule with --ignore {r.code} and report this "
                                    "Dockerfile") from exc
        for f in produced:
            if not config.disable_ignore_pragma and (
                f.code in pragmas.global_ or f.code in pragmas.by_line.get(f.line, ())
            ):
                continue
            if r.source != "hadolint" and (pragmas.check_skip_all or f.code in pragmas.check_skip):
                continue
            if r.source == "buildkit" and pragmas.check_error and f.code not in config.override:
                f = replace(f, severity=Severity.ERROR)
            findings.append(f)
    if config.shellcheck:
        from builder.lint import shellcheck

        for f in shellcheck.run(ctx):
            if f.code in config.ignored or f.code in pragmas.global_ \
                    or f.code in pragmas.by_line.get(f.line, ()):
                continue
            findings.append(f)
    findings.sort(key=Finding.sort_key)
    return findings


def parse_for_lint(text: str, path: str = "Dockerfile") -> tuple[n.Dockerfile, list[Finding]]:
    """Parse like a build would; when only BuildKit's *instruction* rules reject the file (e.g.
    `ONBUILD FROM`), parse leniently so the other rules still run, and return that error as
    an error finding. Raises DockerfileError when the text is not a Dockerfile at all."""
    from builder.errors import DockerfileError
    from builder.syntax import parse

    try:
        return parse(text, path), []
    except DockerfileError as err:
        try:
            df = parse(text, path, strict=False)
        except DockerfileError:
            raise err from None
        extra = [Finding(d.code, Severity.ERROR, d.message, d.span or _first_span(df),
                         d.line_text) for d in err.diagnostics]
        return df, extra


def _first_span(df: n.Dockerfile):  # type: ignore[no-untyped-def]
    from builder.source import Span

    return df.instructions[0].span if df.instructions else Span.point(df.path, 1)


def lint_text(text: str, path: str = "Dockerfile",
              config: LintConfig | None = None) -> list[Finding]:
    """Parse `text` (raises DockerfileError when it is not a Dockerfile) and lint it; BuildKit
    instruction errors come back as error findings (see parse_for_lint)."""
    df, extra = parse_for_lint(text, path)
    return sorted([*extra, *lint(df, config)], key=Finding.sort_key)
