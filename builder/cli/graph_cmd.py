"""`pybuild graph`: plan a Dockerfile and print its build DAG as DOT, Mermaid or JSON."""

from __future__ import annotations

import os
import platform as host
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from builder.errors import UsageError

if TYPE_CHECKING:
    from builder.graph import Platform


class GraphFormat(StrEnum):
    dot = "dot"
    mermaid = "mermaid"
    json = "json"


_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> Platform:
    """The platform this machine builds for natively (BUILDPLATFORM)."""
    from builder.graph import Platform  # on use: the DAG types are not needed at start-up

    machine = host.machine().lower()
    arch = _ARCH.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine, "")
    return Platform("linux", arch, variant)


def parse_build_args(values: list[str]) -> tuple[tuple[str, str | None], ...]:
    """`--build-arg K=V` / `--build-arg K` (value from the environment) → pairs."""
    out: list[tuple[str, str | None]] = []
    for raw in values:
        key, eq, value = raw.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {raw!r}", hint="use --build-arg NAME=VALUE")
        out.append((key, value if eq else None))
    return tuple(out)


def load_plan(file: str | None, context: str, target: str | None, build_args: list[str],
              platform: str | None):
    """Read, parse and plan a Dockerfile the way `build` will (shared by graph and build)."""
    from builder.frontend import PlanOptions, plan
    from builder.frontend.dockerignore import load_ignore
    from builder.graph import Platform
    from builder.syntax import parse

    ctx_dir = Path(context)
    if not ctx_dir.is_dir():
        raise UsageError(f"build context {context!r} is not a directory")
    path = file if file is not None else str(ctx_dir / "Dockerfile")
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as err:
            raise UsageError(f"cannot read Dockerfile {path}: {err.strerror}",
                             hint="pass the Dockerfile with -f FILE") from None
    dockerfile = parse(text, path)
    _, ignore = load_ignore(ctx_dir, None if path == "-" else path)
    try:
        target_platform = Platform.parse(platform) if platform else None
    except ValueError as err:
        raise UsageError(str(err)) from None
    options = PlanOptions(build_args=parse_build_args(build_args), environ=dict(os.environ),
                          target=target, build_platform=host_platform(),
                          target_platform=target_platform, dockerignore=tuple(ignore))
    return dockerfile, plan(dockerfile, options)


def register(app: typer.Typer) -> None:
    """Add `graph` to the app."""

    @app.command("graph")
    def graph_command(
        context: str = typer.Argument(".", help="The build context directory."),
        file: str = typer.Option(None, "-f", "--file",
                                 help="The Dockerfile (default: CONTEXT/Dockerfile; '-' reads "
                                      "standard input)."),
        target: str = typer.Option(None, "--target", help="Build this stage (name or index)."),
        build_arg: list[str] = typer.Option([], "--build-arg",  # noqa: B008
                                            help="NAME=VALUE, or NAME to take its value from "
                                                 "the environment. Repeatable."),
        platform: str = typer.Option(None, "--platform",
                                     help="Target platform, os/arch or os/arch/variant "
                                          "(default: the host)."),
        format: GraphFormat = typer.Option(GraphFormat.dot, "--format",  # noqa: B008
                                           help="dot (Graphviz), mermaid, or json."),
    ) -> None:
        """Print the planned build DAG: stages, steps, edges; pruned stages are marked."""
        from builder.cli.graph_render import to_dot, to_json, to_mermaid
        from builder.source import SourceText

        dockerfile, plan = load_plan(file, context, target, build_arg, platform)
        source = SourceText(dockerfile.path, dockerfile.text)
        render = {GraphFormat.dot: to_dot, GraphFormat.mermaid: to_mermaid,
                  GraphFormat.json: to_json}[format]
        sys.stdout.write(render(plan, source))
        for warning in plan.warnings:
            print(warning.render(), file=sys.stderr)
