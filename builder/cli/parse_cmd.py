"""`pybuild parse`: print a Dockerfile's parse in BuildKit's dump format or as JSON."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from builder.errors import UsageError


class Format(StrEnum):
    buildkit = "buildkit"
    json = "json"


FileOption = Annotated[str, typer.Option(
    "-f", "--file", help="The Dockerfile to parse ('-' reads standard input).")]
FormatOption = Annotated[Format, typer.Option(
    "--format", help="buildkit: BuildKit's parser dump; json: one JSON array of instruction "
                     "objects (cmd, sub_cmd, json, flags, value, start_line, end_line, original, "
                     "heredocs).")]
StrictOption = Annotated[bool, typer.Option(
    "--strict/--no-strict", help="Also apply BuildKit's instruction rules (unknown "
                                 "instructions and flags, argument counts), as a build does.")]
StdinArgument = Annotated[str | None, typer.Argument(
    metavar="[-]", help="'-' reads the Dockerfile from standard input (same as -f -).",
    show_default=False)]


def register(app: typer.Typer) -> None:
    """Add `parse` to the app."""

    @app.command("parse")
    def parse_command(file: FileOption = "Dockerfile", format: FormatOption = Format.buildkit,
                      strict: StrictOption = False, source: StdinArgument = None) -> None:
        """Parse a Dockerfile exactly as BuildKit's parser does and print the result."""
        from builder.syntax import parse_file
        from builder.syntax.dump import buildkit_dump, json_dump

        if source not in (None, "-"):
            raise UsageError(f"unexpected argument {source!r}",
                             hint="name the Dockerfile with -f PATH, or pass - for stdin")
        dockerfile = parse_file("-" if source == "-" else file, strict=strict)
        for warning in dockerfile.warnings:
            print(warning.render(), file=sys.stderr)
        out = buildkit_dump(dockerfile) if format is Format.buildkit else json_dump(dockerfile)
        sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
        sys.stdout.flush()
