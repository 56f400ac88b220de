"""Image config → container command, environment and working directory (docker run rules)."""

from __future__ import annotations

import pytest

from builder.oci.model import ContainerConfig
from builder.run.spec import command, container_spec, environment


def test_command_rules() -> None:
    c = ContainerConfig(entrypoint=("/ep",), cmd=("a", "b"))
    assert command(c) == ("/ep", "a", "b")
    assert command(c, ["x"]) == ("/ep", "x")
    assert command(c, entrypoint=["/other"]) == ("/other",)
    assert command(ContainerConfig(cmd=("sh",))) == ("sh",)
    with pytest.raises(ValueError):
        command(ContainerConfig())


def test_environment_overrides_and_path() -> None:
    env = environment(ContainerConfig(env=("A=1", "B=2")), ["B=3"])
    assert env[:2] == ("A=1", "B=3") and env[2].startswith("PATH=")
    assert environment(ContainerConfig(env=("PATH=/x",))) == ("PATH=/x",)


def test_container_spec_uses_config_defaults() -> None:
    c = ContainerConfig(cmd=("id",), working_dir="/srv", user="app")
    spec = container_spec(c, ["/l"], upper="/u", work="/w")
    assert (spec.cwd, spec.user, spec.argv, spec.network) == ("/srv", "app", ("id",), "none")
    spec = container_spec(c, ["/l"], upper="/u", work="/w", user="0", workdir="/")
    assert (spec.cwd, spec.user) == ("/", "0")
