"""Image config → SandboxSpec for `pybuild run` (pure: Docker's rules for the command line,
environment, working directory and user of a container)."""

from __future__ import annotations

from collections.abc import Sequence

from builder.oci.model import ContainerConfig
from builder.sandbox.spec import Network, SandboxSpec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command(config: ContainerConfig, args: Sequence[str] = (),
            entrypoint: Sequence[str] | None = None) -> tuple[str, ...]:
    """ENTRYPOINT + CMD, where `args` replace CMD and `entrypoint` (--entrypoint) replaces
    ENTRYPOINT and drops CMD (docker run's rules). Raises ValueError when nothing is left."""
    ep = tuple(entrypoint) if entrypoint is not None else tuple(config.entrypoint or ())
    if args:
        cmd: tuple[str, ...] = tuple(args)
    elif entrypoint is not None:
        cmd = ()
    else:
        cmd = tuple(config.cmd or ())
    argv = ep + cmd
    if not argv:
        raise ValueError("no command specified: the image has no CMD or ENTRYPOINT")
    return argv


def environment(config: ContainerConfig, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The image Env, then `extra` KEY=VALUE entries overriding it; PATH always set."""
    env: dict[str, str] = {}
    for entry in (*config.env, *extra):
        key, _, value = entry.partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    return tuple(f"{k}={v}" for k, v in env.items())


def container_spec(config: ContainerConfig, lowers: Sequence[str], *, upper: str, work: str,
                   args: Sequence[str] = (), entrypoint: Sequence[str] | None = None,
                   env: Sequence[str] = (), user: str | None = None,
                   workdir: str | None = None, network: Network = "none",
                   hostname: str = "pybuild") -> SandboxSpec:
    """The SandboxSpec that runs the image's command over its layers (changes go to `upper`
    and are discarded by the caller)."""
    return SandboxSpec(lowers=tuple(lowers), argv=command(config, args, entrypoint),
                       upper=upper, work=work, env=environment(config, env),
                       cwd=workdir or config.working_dir or "/",
                       user=user if user is not None else (config.user or "0"),
                       network=network, hostname=hostname)
