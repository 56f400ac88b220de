"""`pybuild lint`: hadolint-compatible Dockerfile linting with BuildKit's checks, CI report
formats, thresholds and `--fix`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from builder.errors import PybuildError, UsageError

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m",
           "style": "\033[1;35m"}


def _tty(findings: list, color: bool) -> str:  # type: ignore[type-arg]
    out = []
    for f in findings:
        text = f.to_diagnostic().render()
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


_STATE: dict[str, object] = {}


def _with_dockerignore(cfg, path: str):  # type: ignore[no-untyped-def]
    """The config with the .dockerignore patterns that apply to `path` (its directory taken
    as the build context), when a rule that needs them is on."""
    from dataclasses import replace

    if path == "-" or "CopyIgnoredFile" in cfg.ignored:
        return cfg
    df = Path(path)
    if not (df.with_name(df.name + ".dockerignore").is_file()
            or (df.parent / ".dockerignore").is_file()):
        return cfg  # nothing to read (and no need to import the front end)
    from builder.frontend.dockerignore import BadPattern, load_ignore

    try:
        _, patterns = load_ignore(Path(path).parent, path)
    except (OSError, BadPattern):
        return cfg
    return replace(cfg, dockerignore=tuple(patterns)) if patterns else cfg


def _lint_path(path: str, fix: bool = False) -> tuple[list, str, int]:  # type: ignore[type-arg]
    """Lint one file: (findings, error text for stderr, exit code floor: 0, 2 unreadable,
    3 invalid). Runs in a worker process when files are linted in parallel, so it returns
    data and never prints."""
    import io

    from builder.cli.render import print_error
    from builder.lint import lint as run_lint
    from builder.lint import parse_for_lint

    cfg = _STATE["cfg"]
    try:
        if path == "-":
            text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        else:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        return [], (f"error: cannot read {path}: {exc.strerror or exc}\n"
                    "hint: pass Dockerfile paths, or - for standard input\n"), 2
    err = io.StringIO()
    try:
        df, parse_findings = parse_for_lint(text, path)
    except PybuildError as exc:
        print_error(exc, err)
        return [], err.getvalue(), 3
    cfg = _with_dockerignore(cfg, path)  # type: ignore[arg-type]
    if fix:
        from builder.lint.fix import fix as do_fix

        fixed, changes = do_fix(df)
        if changes:
            if path == "-":
                sys.stdout.write(fixed)
            else:
                _write_atomic(Path(path), fixed)
                err.write(f"{path}: fixed {len(changes)} issue(s)\n")
            df, parse_findings = parse_for_lint(fixed, path)
    found = parse_findings + run_lint(df, cfg)  # type: ignore[arg-type]
    # BuildKit would refuse to build a file with instruction errors: exit 3 after reporting.
    return found, err.getvalue(), 3 if parse_findings else 0


def register(app: typer.Typer) -> None:
    """Add `lint` to the app."""

    @app.command("lint")
    def lint_command(
        files: Annotated[list[str] | None, typer.Argument(
            help="Dockerfiles to lint ('-' = standard input; default ./Dockerfile).")] = None,
        format: str = typer.Option("tty", "--format", "-f",
                                   help="tty, json, sarif, checkstyle, gitlab_codeclimate, "
                                        "github or junit."),
        failure_threshold: str = typer.Option(None, "--failure-threshold", "-t",
                                              help="Exit 1 only for findings at or above: "
                                                   "error, warning, info, style or none."),
        no_fail: bool = typer.Option(False, "--no-fail", help="Always exit 0 after linting."),
        ignore: Annotated[list[str] | None, typer.Option(
            "--ignore", help="A rule code to skip (repeatable).")] = None,
        config_file: Annotated[Path | None, typer.Option(
            "--config", "-c", help="A .hadolint.yaml or pyproject.toml to use instead of the "
                                   "discovered ones.")] = None,
        error: Annotated[list[str] | None, typer.Option(
            "--error", help="Report CODE as error.")] = None,
        warning: Annotated[list[str] | None, typer.Option(
            "--warning", help="Report CODE as warning.")] = None,
        info: Annotated[list[str] | None, typer.Option(
            "--info", help="Report CODE as info.")] = None,
        style: Annotated[list[str] | None, typer.Option(
            "--style", help="Report CODE as style.")] = None,
        enable: Annotated[list[str] | None, typer.Option(
            "--enable", help="Turn on a rule that is off by default (DL1001, DL3057, …).")
        ] = None,
        trusted_registry: Annotated[list[str] | None, typer.Option(
            "--trusted-registry", help="Allowed registry for DL3026.")] = None,
        shellcheck: bool = typer.Option(False, "--shellcheck",
                                        help="Also run RUN scripts through the installed "
                                             "shellcheck (SC codes)."),
        fix: bool = typer.Option(False, "--fix", help="Rewrite what is safe to rewrite "
                                 "(casing, MAINTAINER, legacy ENV/LABEL) in place."),
        no_color: bool = typer.Option(False, "--no-color", help="No ANSI colours in tty."),
        jobs: int = typer.Option(0, "--jobs", "-j", help="Lint files in this many processes "
                                 "(0 = one per CPU; used for 8 files or more)."),
    ) -> int:
        """Lint Dockerfiles with hadolint's DL rules, BuildKit's checks and pybuild's
        stage-aware rules. Exit 1 on findings at/above the threshold, 3 when a file is not a
        Dockerfile."""
        from builder.lint import config as cfgmod
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
        status = 0
        jobs_n = jobs if jobs > 0 else (os.cpu_count() or 1)
        parallel = (jobs_n > 1 and len(paths) >= 8 and not fix and "-" not in paths
                    and "fork" in __import__("multiprocessing").get_all_start_methods())
        if parallel:
            import multiprocessing

            _STATE["cfg"] = cfg
            chunks = max(1, len(paths) // (jobs_n * 4))
            with multiprocessing.get_context("fork").Pool(jobs_n) as pool:
                results = pool.map(_lint_path, paths, chunksize=chunks)
        else:
            _STATE["cfg"] = cfg
            results = [_lint_path(p, fix) for p in paths]
        for found, errors, code in results:
            findings += found
            status = max(status, code)
            if errors:
                sys.stderr.write(errors)
        findings.sort(key=Finding.sort_key)
        if format == "tty":
            color = not no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
            text = _tty(findings, color)
            if text:
                print(text)
        else:
            print(render(format, findings, paths))
        if status:
            return status  # 3: some file is not a valid Dockerfile; 2: some file unreadable
        if cfg.no_fail:
            return 0
        return 1 if fails(findings, cfg.failure_threshold) else 0
