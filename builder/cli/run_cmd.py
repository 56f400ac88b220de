"""`pybuild run IMAGE [COMMAND...]`: run an image's command in the sandbox (foreground)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("run", context_settings={"allow_interspersed_args": False})
    def run(
        ctx: typer.Context,
        image: Annotated[str, typer.Argument(metavar="IMAGE", help="Image name, ID or file "
                                             "reference (oci-layout://, oci-archive:, …).")],
        command: Annotated[list[str] | None, typer.Argument(
            metavar="[COMMAND [ARG...]]", help="Replaces the image's CMD.")] = None,
        env: Annotated[list[str] | None, typer.Option(
            "-e", "--env", metavar="KEY=VALUE", help="Set an environment variable.")] = None,
        user: Annotated[str | None, typer.Option("-u", "--user", metavar="USER[:GROUP]")
                        ] = None,
        workdir: Annotated[str | None, typer.Option("-w", "--workdir", metavar="DIR")] = None,
        entrypoint: Annotated[str | None, typer.Option("--entrypoint", metavar="CMD")] = None,
        network: Annotated[str, typer.Option("--network", metavar="none|host")] = "none",
        interactive: Annotated[bool, typer.Option("-i", "--interactive",
                                                  help="Keep standard input open.")] = False,
        rm: Annotated[bool, typer.Option("--rm", help="Accepted for docker compatibility; "
                                         "changes are always discarded.")] = True,
    ) -> int:
        """Run a command in a new container from IMAGE; exits with its status."""
        from builder.cli.image_cmds import open_store
        from builder.errors import UsageError
        from builder.run import run_image

        if network not in ("none", "host"):
            raise UsageError(f"--network={network}: expected none or host")
        code = run_image(open_store(ctx), image, tuple(command or ()),
                         entrypoint=[entrypoint] if entrypoint is not None else None,
                         env=tuple(env or ()), user=user, workdir=workdir,
                         network="host" if network == "host" else "none",
                         interactive=interactive)
        raise typer.Exit(code)
