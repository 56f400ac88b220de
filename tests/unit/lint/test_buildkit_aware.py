"""BuildKit-aware behaviour hadolint lacks: cache mounts and heredocs, plus the `# check=`
directive and inline pragmas."""

from __future__ import annotations

from builder.lint import LintConfig
from tests.unit.lint.helpers import codes, has


def test_apt_lists_cache_mount_silences_dl3009() -> None:
    bad = "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends x=1\n"
    assert has(bad, "DL3009")
    cached = ("FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt/lists "
              "apt-get update && apt-get install -y --no-install-recommends x=1\n")
    assert not has(cached, "DL3009")


def test_pip_cache_mount_silences_dl3042() -> None:
    assert has("FROM python:3.12\nRUN pip install x==1\n", "DL3042")
    assert not has("FROM python:3.12\nRUN --mount=type=cache,target=/root/.cache/pip "
                   "pip install x==1\n", "DL3042")


def test_apk_cache_mount_silences_dl3019() -> None:
    assert has("FROM alpine:3.20\nRUN apk add curl=8.9.1-r0\n", "DL3019")
    assert not has("FROM alpine:3.20\nRUN --mount=type=cache,target=/var/cache/apk "
                   "apk add curl=8.9.1-r0\n", "DL3019")


def test_heredoc_run_is_linted_at_its_instruction() -> None:
    text = ("FROM debian:12\nRUN <<EOF\nset -e\ncd /tmp\napt-get install -y curl\nEOF\n"
            "USER 1000\n")
    got = codes(text)
    assert ("DL3003", 2) in got and ("DL3008", 2) in got
    # A heredoc fed to a non-shell program is not shell: nothing to lint inside.
    py = "FROM python:3.12\nRUN python3 <<EOF\nimport os\ncd = 1\nEOF\n"
    assert not has(py, "DL3003")


def test_check_directive_skips_and_escalates_buildkit_checks() -> None:
    text = "FROM alpine:3.20 as build\nCMD echo hi\n"
    assert has(text, "FromAsCasing") and has(text, "JSONArgsRecommended")
    skipped = "# check=skip=FromAsCasing\n" + text
    assert not has(skipped, "FromAsCasing") and has(skipped, "JSONArgsRecommended")
    assert not any(c[0] in ("FromAsCasing", "JSONArgsRecommended")
                   for c in codes("# check=skip=all\n" + text))
    from builder.lint import lint_text

    errs = {f.code: f.severity.value for f in lint_text("# check=error=true\n" + text)}
    assert errs["FromAsCasing"] == "error"
    assert errs["DL3025"] == "warning"  # hadolint rules keep their own severities


def test_inline_ignore_pragmas() -> None:
    text = "FROM debian:12\n# hadolint ignore=DL3003\nRUN cd /x && make\nRUN cd /y\n"
    got = codes(text)
    assert ("DL3003", 3) not in got and ("DL3003", 4) in got
    glob = "# hadolint global ignore=DL3003\nFROM debian:12\nRUN cd /x\nRUN cd /y\n"
    assert not has(glob, "DL3003")
    # pybuild's pragma reaches the next instruction across comments and blank lines.
    pb = "FROM debian:12\n# pybuild ignore=DL3003, DL3059\n\n# why: vendor script\nRUN cd /x\n"
    assert not has(pb, "DL3003")
    # disable-ignore-pragma turns pragmas off.
    cfg = LintConfig().merge({"disable-ignore-pragma": True}, "test")
    assert has(text.replace("RUN cd /y\n", ""), "DL3003", cfg)


def test_dl1001_reports_inline_pragmas_when_enabled() -> None:
    text = "FROM debian:12\n# hadolint ignore=DL3003\nRUN cd /x\n"
    assert not has(text, "DL1001")
    assert has(text, "DL1001", LintConfig(enabled=frozenset({"DL1001"})))


def test_a_crashing_rule_is_a_clean_error(monkeypatch) -> None:
    import pytest

    from builder.errors import PybuildError
    from builder.lint import RULES
    from builder.lint.rule import Rule

    def boom(ctx):  # type: ignore[no-untyped-def]
        raise KeyError("x")

    r = RULES["DL3000"]
    monkeypatch.setitem(RULES, "DL3000", Rule(r.code, r.severity, r.message, boom))
    with pytest.raises(PybuildError, match="internal error in lint rule DL3000"):
        codes("FROM alpine:3.20\n")
