"""A build's CLI start-up: only the build command's module is imported and introspected;
every other command still gets the whole tree (same help and errors as before)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OTHERS = ("lint_cmd", "image_cmds", "graph_cmd", "parse_cmd", "run_cmd", "sandbox_cmds")


def _modules_after(argv: list[str]) -> tuple[int, set[str]]:
    code = ("import sys\nfrom builder.cli import app\n"
            f"rc = app.main({argv!r})\n"
            "print(rc, ' '.join(m.rsplit('.', 1)[1] for m in sys.modules "
            "if m.startswith('builder.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    rc, _, names = out.partition(" ")
    return int(rc), set(names.split())


def test_build_imports_only_the_build_command() -> None:
    for argv in (["build", "--help"], ["--root", "/nonexistent", "-f", "x", "--help"]):
        rc, names = _modules_after(argv)
        assert rc == 0 and "build_cmd" in names
        assert not names & set(OTHERS), (argv, names & set(OTHERS))


def test_help_and_unknown_words_get_the_whole_tree() -> None:
    rc, names = _modules_after(["--help"])
    assert rc == 0 and set(OTHERS) <= names


def test_a_command_imports_only_its_own_module() -> None:
    for argv, own in ((["images", "--help"], "image_cmds"), (["lint", "--help"], "lint_cmd"),
                      (["parse", "--help"], "parse_cmd")):
        rc, names = _modules_after(argv)
        assert rc == 0 and own in names
        assert not names & (set(OTHERS) - {own}), (argv, names & set(OTHERS))


def test_the_command_map_matches_the_whole_tree() -> None:
    from builder.cli import app

    tree = app._make_command(app._MODULES)
    assert set(app._MODULE_OF) == set(tree.commands)
    for name, module in app._MODULE_OF.items():
        assert name in app._make_command((module,)).commands


def test_default_command_inserted_for_options(capsys) -> None:
    from builder.cli import app

    assert app.main(["-f", "Dockerfile", "--bogus-flag", "."]) == 2
    err = capsys.readouterr().err
    assert "pybuild build" in err and "--bogus-flag" in err


def test_the_build_path_does_not_import_asyncio() -> None:
    """pyzstd applies typing_extensions.deprecated at import; typing_extensions before 4.16
    imported asyncio for it (~40 ms per build on Python 3.11): pyproject asks for 4.16."""
    code = ("import sys\nimport builder.api, builder.cli.build_cmd\n"
            "print('asyncio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"


def test_builds_without_cache_flags_do_not_import_the_cache_package() -> None:
    """builder.cache (--cache-to/--cache-from) costs ~20 ms of start-up: only builds that
    use it pay for it."""
    code = ("import sys\nfrom builder.cli import app\n"
            "app.main(['build', '--network', 'none', '/nonexistent'])\n"
            "print('builder.cache' in sys.modules, 'builder.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    assert out == "False True"
