"""The `pybuild` console entry point: the warm-rebuild fast path first (no typer, no parser),
then the full Typer app."""

from __future__ import annotations

import sys


def main() -> None:
    from builder.cli.fastpath import try_fast

    code = try_fast(sys.argv[1:])
    if code is not None:
        sys.stdout.flush()
        sys.exit(code)
    from builder.cli.app import main as app_main

    app_main()
