"""Report formats as pure functions: escaping and edge cases the CLI tests do not reach."""

from __future__ import annotations

import json

from builder.cli.lint_cmd import _tty
from builder.errors import Severity
from builder.lint.finding import Finding
from builder.lint.report import fails, render, to_github
from builder.source import Span


def _f(code: str = "DL3003", sev: Severity = Severity.WARNING, msg: str = "m",
       file: str = "a,b:c/Dockerfile") -> Finding:
    return Finding(code, sev, msg, Span(file, 2, 1, 2, 5), "RUN cd /x")


def test_github_escapes_properties_and_message() -> None:
    out = to_github([_f(msg="50% done\nnext")])
    assert out == ("::warning file=a%2Cb%3Ac/Dockerfile,line=2,col=1,title=DL3003::"
                   "50%25 done%0Anext")


def test_empty_reports_are_valid() -> None:
    assert json.loads(render("json", [], ["Dockerfile"])) == []
    assert json.loads(render("sarif", [], ["Dockerfile"]))["runs"][0]["results"] == []
    assert json.loads(render("gitlab_codeclimate", [], ["Dockerfile"])) == []
    assert render("github", [], ["Dockerfile"]) == ""
    assert "<testsuites" in render("junit", [], ["Dockerfile"])


def test_thresholds() -> None:
    style = [_f(sev=Severity.STYLE)]
    assert fails(style, "style") and not fails(style, "info") and not fails(style, "none")
    err = [_f(sev=Severity.ERROR)]
    assert all(fails(err, t) for t in ("error", "warning", "info", "style"))


def test_tty_colour_only_when_asked() -> None:
    plain = _tty([_f()], color=False)
    assert "\033[" not in plain and "warning DL3003: m" in plain and "^^^^" in plain
    coloured = _tty([_f()], color=True)
    assert "\033[1;33mwarning\033[0m" in coloured and "\033[1mDL3003\033[0m" in coloured
