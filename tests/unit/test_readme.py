"""README's quick start stays true: two commands, and CI runs exactly the test command."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_quick_start_has_two_commands_that_set_up_first() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert all(c.startswith("bash .ci/setup && ") for c in commands)


def test_main_job_script_exists() -> None:
    main_job = _quick_start_commands()[0]
    for script in re.findall(r"bash (\S+)", main_job):
        assert (ROOT / script).is_file(), script


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _quick_start_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1].strip() == test_command
