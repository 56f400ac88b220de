"""The entry point: version, usage errors → exit 2, PybuildError → rendered, never a traceback."""

from __future__ import annotations

from builder.cli import app as cli_app
from builder.errors import Diagnostic, Severity
from builder.source import Span


def test_version(capsys) -> None:
    assert cli_app.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("pybuild ")


def test_unknown_option_is_usage_error(capsys) -> None:
    assert cli_app.main(["--no-such-flag"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_diagnostic_has_location_line_and_caret() -> None:
    diag = Diagnostic("E1", Severity.ERROR, "bad thing", Span("Dockerfile", 3, 5, 3, 8),
                      hint="do this", line_text="RUN fooo")
    text = diag.render()
    lines = text.splitlines()
    assert lines[0] == "Dockerfile:3:5: error E1: bad thing"
    assert lines[1].endswith("| RUN fooo")
    assert lines[2].endswith("|     ^^^")
    assert lines[3] == "hint: do this"


def test_internal_error_is_reported_without_traceback(capsys, monkeypatch) -> None:
    def boom(*_args, **_kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli_app._COMMAND, "main", boom)
    monkeypatch.delenv("PYBUILD_DEBUG", raising=False)
    assert cli_app.main(["images"]) == 70
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaboom" in err
    assert "Traceback" not in err


def test_help_text_brackets_are_not_markup(capsys) -> None:
    assert cli_app.main(["build", "--help"]) == 0
    assert "Usage" in capsys.readouterr().out
