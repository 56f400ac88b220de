"""CLI commands (to be filled in by the module's owner)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
