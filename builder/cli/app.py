"""The `pybuild` entry point: the Typer app, default-command dispatch and error → exit code."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import typer

from builder import __version__
from builder.cli.render import print_error
from builder.errors import PybuildError

# The command modules, in help order; each has a `register(app)`. They are imported when a
# command tree is made: a build (the CI hot path) needs only build_cmd, and importing and
# introspecting every other command cost ~0.1 s of CPU on each run.
_MODULES = ("parse_cmd", "graph_cmd", "image_cmds", "sandbox_cmds", "build_cmd", "run_cmd",
            "lint_cmd")
# Which module registers each command, so one command's run imports only its own module
# (a test keeps this equal to the whole tree).
_MODULE_OF = {
    "parse": "parse_cmd", "graph": "graph_cmd", "info": "sandbox_cmds", "build": "build_cmd",
    "run": "run_cmd", "lint": "lint_cmd",
    **{name: "image_cmds" for name in ("images", "inspect", "history", "tag", "rmi", "save",
                                        "load", "import", "prune", "pull", "push")},
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pybuild {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    root: str = typer.Option(
        None, "--root", envvar="PYBUILD_ROOT", metavar="DIR",
        help="Store directory (default: /var/lib/pybuild as root, else $XDG_DATA_HOME/pybuild).",
    ),
) -> None:
    """pybuild: build, export, run and lint container images from Dockerfiles."""
    ctx.obj = {"root": root}  # read by builder.cli.image_cmds.open_store


def _make_command(modules: tuple[str, ...]) -> Any:
    """The click command tree of the Typer app with the given command modules registered."""
    app = typer.Typer(
        name="pybuild",
        help="A daemonless Dockerfile compiler. "
        "`pybuild -f Dockerfile .` is `pybuild build -f Dockerfile .`.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Help texts are plain text: `[...]` in them (e.g. `os/arch[/variant]`) is not markup.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name in modules:
        importlib.import_module(f"builder.cli.{name}").register(app)
    return typer.main.get_command(app)


def _full() -> Any:
    """The whole command tree, made once."""
    command = globals().get("_COMMAND")
    if command is None:
        command = globals()["_COMMAND"] = _make_command(_MODULES)
    return command


def __getattr__(name: str) -> Any:
    """`_COMMAND`, the whole command tree, is made on first use (PEP 562)."""
    if name == "_COMMAND":
        return _full()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_for(argv: list[str]) -> tuple[list[str], Any]:
    """The arguments to run (default command inserted) and the command tree to run them on:
    a tree with only the named command's module (an option first means `build`: no command
    name starts with `-`), else — no word, help, version, an unknown word — the whole tree."""
    i = 0
    while i < len(argv) and (argv[i] == "--root" or argv[i].startswith("--root=")):
        i += 2 if argv[i] == "--root" else 1
    if argv and argv[0] not in ("-h", "--help", "--version") and i < len(argv) and \
            "_COMMAND" not in globals():
        if argv[i].startswith("-"):
            argv = [*argv[:i], "build", *argv[i:]]
        if argv[i] in _MODULE_OF:
            return argv, _make_command((_MODULE_OF[argv[i]],))
    full = _full()
    return _with_default_command(argv), full


def _with_default_command(argv: list[str]) -> list[str]:
    """`pybuild -f Dockerfile .` means `pybuild build -f Dockerfile .` (docker build's habit)."""
    if not argv or argv[0] in ("-h", "--help", "--version"):
        return argv
    commands = getattr(_full(), "commands", {})
    # Skip the global options (`--root DIR` / `--root=DIR`) to find the first word.
    i = 0
    while i < len(argv) and (argv[i] == "--root" or argv[i].startswith("--root=")):
        i += 2 if argv[i] == "--root" else 1
    if i >= len(argv) or argv[i] in commands or "build" not in commands:
        return argv
    return [*argv[:i], "build", *argv[i:]]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code. Never shows a traceback:
    PybuildErrors and usage mistakes are rendered; anything else is reported as an internal
    error (exit 70) with the traceback only under PYBUILD_DEBUG=1."""
    args, command = _command_for(list(sys.argv[1:] if argv is None else argv))
    try:
        result = command.main(args=args, prog_name="pybuild", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except PybuildError as err:
        print_error(err, sys.stderr)
        code = err.exit_code
    except typer.Exit as ex:
        code = ex.exit_code
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        code = 130
    except typer.TyperException as ex:  # typer's (vendored click) usage errors
        ex.show(file=sys.stderr)  # type: ignore[attr-defined]
        code = getattr(ex, "exit_code", 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    except Exception as ex:  # a bug in pybuild: say so plainly, keep the traceback on request
        if os.environ.get("PYBUILD_DEBUG"):
            traceback.print_exc()
        print(f"pybuild: internal error: {type(ex).__name__}: {ex}\n"
              "This is a bug in pybuild. Re-run with PYBUILD_DEBUG=1 to see the traceback, "
              "and report it.", file=sys.stderr)
        code = 70  # EX_SOFTWARE
    if argv is None:
        sys.exit(code)
    return code
