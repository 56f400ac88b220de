"""`pybuild lint`: hadolint-compatible Dockerfile linting with BuildKit's checks, CI report
formats, thresholds and `--fix`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from builder.errors import PybuildError, UsageError

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m",
           "style": "\033[1;35m"}


def _tty(findings: list, color: bool) -> str:  # type: ignore[type-arg]
    from builder.cli.render import format_diagnostic

    out = []
    for f in findings:
        text = format_diagnostic(f.to_diagnostic())
        if color:
            level = f.severity.value
            text = text.replace(f"{level} {f.code}:", f"{_COLORS[level]}{level}\033[0m "
                                f"\033[1m{f.code}\033[0m:", 1)
        out.append(text)
    return "\n".join(out)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.pybuild-fix.{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def register(app: typer.Typer) -> None:
    """Add `lint` to the app."""

    @app.command("lint")
    def lint_command(
        files: list[str] = typer.Argument(None, help="Dockerfiles to lint ('-' = standard "
                                          "input; default ./Dockerfile)."),
        format: str = typer.Option("tty", "--format", "-f",
                                   help="tty, json, sarif, checkstyle, gitlab_codeclimate, "
                                        "github or junit."),
        failure_threshold: str = typer.Option(None, "--failure-threshold", "-t",
                                              help="Exit 1 only for findings at or above: "
                                                   "error, warning, info, style or none."),
        no_fail: bool = typer.Option(False, "--no-fail", help="Always exit 0 after linting."),
        ignore: list[str] = typer.Option(None, "--ignore", help="A rule code to skip "
                                         "(repeatable)."),
        config_file: Path = typer.Option(None, "--config", "-c",
                                         help="A .hadolint.yaml or pyproject.toml to use "
                                              "instead of the discovered ones."),
        error: list[str] = typer.Option(None, "--error", help="Report CODE as error."),
        warning: list[str] = typer.Option(None, "--warning", help="Report CODE as warning."),
        info: list[str] = typer.Option(None, "--info", help="Report CODE as info."),
        style: list[str] = typer.Option(None, "--style", help="Report CODE as style."),
        enable: list[str] = typer.Option(None, "--enable", help="Turn on a rule that is off "
                                         "by default (DL1001, DL3057, …)."),
        trusted_registry: list[str] = typer.Option(None, "--trusted-registry",
                                                   help="Allowed registry for DL3026."),
        shellcheck: bool = typer.Option(False, "--shellcheck",
                                        help="Also run RUN scripts through the installed "
                                             "shellcheck (SC codes)."),
        fix: bool = typer.Option(False, "--fix", help="Rewrite what is safe to rewrite "
                                 "(casing, MAINTAINER, legacy ENV/LABEL) in place."),
        no_color: bool = typer.Option(False, "--no-color", help="No ANSI colours in tty."),
    ) -> int:
        """Lint Dockerfiles with hadolint's DL rules, BuildKit's checks and pybuild's
        stage-aware rules. Exit 1 on findings at/above the threshold, 3 when a file is not a
        Dockerfile."""
        from builder.lint import config as cfgmod
        from builder.lint import lint as run_lint
        from builder.lint import parse_for_lint
        from builder.lint.finding import Finding
        from builder.lint.report import FORMATS, fails, render

        if format not in FORMATS:
            raise UsageError(f"unknown --format {format!r}", hint="one of " + ", ".join(FORMATS))
        paths = files or ["Dockerfile"]
        if config_file is not None:
            cfg = cfgmod.load([config_file])
        else:
            cfg = cfgmod.load(cfgmod.discover(Path.cwd()))
        overrides: dict[str, object] = {}
        for level, codes in (("error", error), ("warning", warning), ("info", info),
                             ("style", style)):
            if codes:
                overrides[level] = list(codes)
        extra: dict[str, object] = {}
        if overrides:
            extra["override"] = overrides
        if ignore:
            extra["ignored"] = list(ignore)
        if enable:
            extra["enable"] = list(enable)
        if trusted_registry:
            extra["trustedRegistries"] = list(trusted_registry)
        if failure_threshold is not None:
            extra["failure-threshold"] = failure_threshold
        if shellcheck:
            extra["shellcheck"] = True
        if no_fail:
            extra["no-fail"] = True
        cfg = cfg.merge(extra, "command line")

        findings: list[Finding] = []
        invalid = False
        for path in paths:
            try:
                if path == "-":
                    text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
                else:
                    with open(path, "rb") as fh:
                        text = fh.read().decode("utf-8", "surrogateescape")
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror or exc}",
                                 hint="pass Dockerfile paths, or - for standard input") from None
            try:
                df, parse_findings = parse_for_lint(text, path)
            except PybuildError as err:
                from builder.cli.render import print_error

                print_error(err, sys.stderr)
                invalid = True
                continue
            if fix:
                from builder.lint.fix import fix as do_fix

                fixed, changes = do_fix(df)
                if changes:
                    if path == "-":
                        sys.stdout.write(fixed)
                    else:
                        _write_atomic(Path(path), fixed)
                        print(f"{path}: fixed {len(changes)} issue(s)", file=sys.stderr)
                    df, parse_findings = parse_for_lint(fixed, path)
            if parse_findings:
                invalid = True  # BuildKit would refuse to build it: exit 3 after reporting
            findings += parse_findings + run_lint(df, cfg)
        findings.sort(key=Finding.sort_key)
        if format == "tty":
            color = not no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
            text = _tty(findings, color)
            if text:
                print(text)
        else:
            print(render(format, findings, paths))
        if invalid:
            return 3
        if cfg.no_fail:
            return 0
        return 1 if fails(findings, cfg.failure_threshold) else 0
