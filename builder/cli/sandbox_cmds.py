"""`pybuild info`: which sandbox mode this machine allows (DESIGN.md §5 ladder), and why."""

from __future__ import annotations

import json
import platform

import typer

from builder import __version__
from builder.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add `info` to the app."""

    @app.command("info")
    def info(
        format: str = typer.Option("text", "--format", help="Output format: text or json."),
    ) -> None:
        """Show the sandbox mode this machine allows, every check behind it, and the fix when
        RUN steps are refused."""
        if format not in ("text", "json"):
            raise UsageError(f"unknown --format {format!r}: expected text or json")
        from builder.sandbox import detect  # on use: keeps other commands' start-up lean

        report = detect()
        data = {"version": __version__, "kernel": platform.release(),
                "python": platform.python_version(), "sandbox": report.as_dict()}
        if format == "json":
            typer.echo(json.dumps(data, indent=2))
            return
        typer.echo(f"pybuild {__version__} (kernel {platform.release()}, "
                   f"Python {platform.python_version()})")
        state = "RUN steps supported" if report.supported else "RUN steps REFUSED"
        typer.echo(f"sandbox mode: {report.mode.value} ({report.filesystem.value}): {state}")
        typer.echo(f"  why: {report.reason}")
        for check in report.checks:
            mark = "ok " if check.ok else "no "
            typer.echo(f"  [{mark}] {check.name}: {check.detail}")
        if report.fix:
            typer.echo(f"fix: {report.fix}")
