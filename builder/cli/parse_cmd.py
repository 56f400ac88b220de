"""`pybuild parse`: print a Dockerfile's parse in BuildKit's dump format or as JSON."""

from __future__ import annotations

import sys
from enum import Enum

import typer


class Format(str, Enum):
    buildkit = "buildkit"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add `parse` to the app."""

    @app.command("parse")
    def parse_command(
        file: str = typer.Option("Dockerfile", "-f", "--file",
                                 help="The Dockerfile to parse ('-' reads standard input)."),
        format: Format = typer.Option(Format.buildkit, "--format",
                                      help="buildkit: BuildKit's parser dump; json: one JSON "
                                           "array of instruction objects."),
        strict: bool = typer.Option(False, "--strict/--no-strict",
                                    help="Also apply BuildKit's instruction rules (unknown "
                                         "instructions/flags, argument counts), as a build does."),
        stdin: bool = typer.Argument(False, hidden=True, show_default=False, metavar="",
                                     parser=lambda v: v == "-"),
    ) -> None:
        """Parse a Dockerfile exactly as BuildKit's parser does and print the result."""
        from builder.syntax import parse_file
        from builder.syntax.dump import buildkit_dump, json_dump

        path = "-" if stdin else file
        dockerfile = parse_file(path, strict=strict)
        out = buildkit_dump(dockerfile) if format is Format.buildkit else json_dump(dockerfile)
        data = out.encode("utf-8", "surrogateescape")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
