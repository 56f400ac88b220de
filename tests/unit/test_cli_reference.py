"""docs/cli.md is generated from the real command tree; it must be current."""

from __future__ import annotations

from builder.cli import reference
from builder.cli.app import _COMMAND
from tests.conftest import ROOT


def test_cli_reference_page_is_current() -> None:
    page = (ROOT / "docs" / "cli.md").read_text()
    assert page == reference.render(), (
        "docs/cli.md is stale: run `python3 -m builder.cli.reference > docs/cli.md`")


def test_every_command_and_option_is_documented() -> None:
    page = reference.render()
    for name, cmd in _COMMAND.commands.items():
        assert f"## `pybuild {name}`" in page
        for param in cmd.params:
            for opt in param.opts:
                if param.param_type_name == "option":
                    assert f"`{opt}`" in page, (name, opt)
