"""`pybuild [build] [-f FILE|-] [-t NAME]... CONTEXT`: the build command (docker build flags)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from builder.errors import UsageError

if TYPE_CHECKING:
    from builder.cache import CacheSpec

_ENV_SDE = "SOURCE_DATE_EPOCH"


def _pairs(values: list[str] | None, flag: str, need_value: bool) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for v in values or []:
        key, sep, value = v.partition("=")
        if not key:
            raise UsageError(f"{flag} {v!r}: expected KEY=VALUE")
        if need_value and not sep:
            raise UsageError(f"{flag} {v!r}: expected KEY=VALUE")
        out.append((key, value if sep else None))
    return out


def register(app: typer.Typer) -> None:
    """Add `build` (the default command)."""

    @app.command("build")
    def build(
        ctx: typer.Context,
        context: Annotated[str, typer.Argument(metavar="CONTEXT",
                                               help="The build context directory.")],
        file: Annotated[str | None, typer.Option(
            "-f", "--file", metavar="FILE",
            help="Dockerfile (default: CONTEXT/Dockerfile; - reads standard input).")] = None,
        tag: Annotated[list[str] | None, typer.Option(
            "-t", "--tag", metavar="NAME[:TAG]", help="Name the image (repeatable).")] = None,
        build_arg: Annotated[list[str] | None, typer.Option(
            "--build-arg", metavar="KEY[=VALUE]",
            help="Set a build-time variable (KEY alone takes it from the environment).")] = None,
        target: Annotated[str | None, typer.Option(
            "--target", metavar="STAGE", help="Build this stage (default: the last).")] = None,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache", help="Run every step even when it is cached.")] = False,
        pull: Annotated[str, typer.Option(
            "--pull", metavar="missing|always|never",
            help="When to fetch base images from their registry (default: when missing).")
        ] = "missing",
        push: Annotated[bool, typer.Option(
            "--push", help="Push every -t name to its registry after the build.")] = False,
        label: Annotated[list[str] | None, typer.Option(
            "--label", metavar="KEY=VALUE", help="Add an image label (repeatable).")] = None,
        network: Annotated[str, typer.Option(
            "--network", metavar="host|none|default",
            help="Network of RUN steps (default: host).")] = "default",
        progress: Annotated[str, typer.Option(
            "--progress", metavar="auto|tty|plain|quiet|json",
            help="Progress output on standard error.")] = "auto",
        quiet: Annotated[bool, typer.Option(
            "-q", "--quiet", help="No progress; print only the image ID.")] = False,
        output: Annotated[list[str] | None, typer.Option(
            "-o", "--output", metavar="type=oci,dest=PATH[,tar=false]|type=docker,dest=FILE|"
            "type=local,dest=DIR", help="Also write the image there (repeatable).")] = None,
        compression: Annotated[str, typer.Option(
            "--compression", metavar="gzip|zstd|none",
            help="Layer compression of OCI outputs.")] = "gzip",
        iidfile: Annotated[str | None, typer.Option(
            "--iidfile", metavar="FILE", help="Write the image ID to FILE.")] = None,
        metadata_file: Annotated[str | None, typer.Option(
            "--metadata-file", metavar="FILE",
            help="Write build metadata (buildx keys) as JSON to FILE.")] = None,
        jobs: Annotated[int | None, typer.Option(
            "--jobs", "-j", metavar="N",
            help="Steps run in parallel (default: the number of cores).")] = None,
        source_date_epoch: Annotated[int | None, typer.Option(
            "--source-date-epoch", metavar="SECONDS",
            help="Clamp timestamps for reproducible images (default: $SOURCE_DATE_EPOCH).")
        ] = None,
        cache_to: Annotated[list[str] | None, typer.Option(
            "--cache-to", metavar="type=local,dest=DIR[,mode=min|max]",
            help="Export the build cache to DIR (repeatable; also compression=zstd|gzip, "
            "tag=NAME, ignore-error=true).")] = None,
        cache_from: Annotated[list[str] | None, typer.Option(
            "--cache-from", metavar="type=local,src=DIR",
            help="Use a cache exported with --cache-to (repeatable; tag=NAME).")] = None,
        check: Annotated[bool, typer.Option(
            "--check", help="Only run the build checks (BuildKit's rules); exit 1 on any "
            "finding.")] = False,
        secret: Annotated[list[str] | None, typer.Option(
            "--secret", metavar="id=ID[,src=FILE|env=VAR]",
            help="A secret for RUN --mount=type=secret (repeatable; never in the image or "
            "the cache key).")] = None,
        ssh: Annotated[list[str] | None, typer.Option(
            "--ssh", metavar="ID[=SOCKET]",
            help="An SSH agent socket for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK; "
            "repeatable).")] = None,
    ) -> int:
        """Build an image from a Dockerfile (`pybuild -f Dockerfile .` is the same command)."""
        from builder.api import BuildOptions
        from builder.api import build as run_build
        from builder.cli import progress as prog
        from builder.cli.image_cmds import open_store
        from builder.executor import StepFailed
        from builder.executor.secrets import parse_secret, parse_ssh
        from builder.export import parse_output
        from builder.oci.model import Compression

        if progress not in prog.MODES:
            raise UsageError(f"--progress={progress}: expected one of {', '.join(prog.MODES)}")
        if pull not in ("missing", "always", "never", "true", "false"):
            raise UsageError(f"--pull={pull}: expected missing, always or never")
        pull = {"true": "always", "false": "missing"}.get(pull, pull)
        if network not in ("default", "host", "none"):
            raise UsageError(f"--network={network}: expected host, none or default")
        try:
            comp = Compression(compression)
        except ValueError:
            raise UsageError(f"--compression={compression}: expected gzip, zstd or none"
                             ) from None
        if jobs is not None and jobs < 1:
            raise UsageError("--jobs must be at least 1")
        sde = source_date_epoch
        if sde is None and os.environ.get(_ENV_SDE):
            try:
                sde = int(os.environ[_ENV_SDE])
            except ValueError:
                raise UsageError(f"{_ENV_SDE}={os.environ[_ENV_SDE]!r} is not a number of "
                                 "seconds") from None
        text = None
        if file == "-":
            text = sys.stdin.read()
        labels = [(k, v or "") for k, v in _pairs(label, "--label", True)]
        opts = BuildOptions(
            context=Path(context), dockerfile=file, dockerfile_text=text,
            tags=tuple(tag or ()), build_args=tuple(_pairs(build_arg, "--build-arg", False)),
            target=target, no_cache=no_cache, pull=pull, push=push, labels=tuple(labels),
            network=network, outputs=tuple(parse_output(o) for o in output or ()),
            compression=comp, jobs=jobs or os.cpu_count() or 1, source_date_epoch=sde,
            iidfile=iidfile, metadata_file=metadata_file, environ=dict(os.environ),
            secrets=tuple(parse_secret(s, os.environ) for s in secret or ()),
            ssh=tuple(parse_ssh(s, os.environ) for s in ssh or ()),
            cache_to=_cache_specs(cache_to, "to"), cache_from=_cache_specs(cache_from, "from"))
        if check:
            from builder.api import check as run_check

            found = run_check(opts)
            for diag in found:
                print(diag.render(), file=sys.stderr)
            if not found:
                print("Check complete, no warnings found.", file=sys.stderr)
            return 1 if found else 0
        store = open_store(ctx)
        mode = "quiet" if quiet else progress
        sink = prog.make(mode)
        try:
            result = run_build(store, opts, sink)
        except StepFailed as err:
            sink.close()
            if mode != "plain" and err.tail:
                print("------", file=sys.stderr)
                for line in err.tail:
                    print(f" > {line}", file=sys.stderr)
                print("------", file=sys.stderr)
            raise
        finally:
            sink.close()
        if mode == "json":
            sink_out = prog.JsonProgress(sys.stdout)
            import builder.events as ev

            sink_out(ev.Message(result.config_digest))
        else:
            for name in result.names:
                if mode not in ("quiet",):
                    print(f"=> naming to {name}", file=sys.stderr)
            for name, digest in result.pushed:
                if mode not in ("quiet",):
                    print(f"=> pushed {name}@{digest}", file=sys.stderr)
            print(result.config_digest)
        return 0


def _cache_specs(values: list[str] | None, direction: str) -> tuple[CacheSpec, ...]:
    """--cache-to/--cache-from values; builder.cache is imported only when there are some."""
    if not values:
        return ()
    from builder.cache import parse_cache_spec

    return tuple(parse_cache_spec(v, direction) for v in values)

