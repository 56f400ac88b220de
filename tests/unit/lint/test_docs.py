"""The lint docs are generated from the rules and stay honest: every rule has its page, the
committed pages equal the generated ones, and every page's examples do what they claim
(the "Reported" example triggers the rule, the "Not reported" one does not)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from builder.lint import RULES, LintConfig, lint_text
from builder.lint.docs import HADOLINT_CODES, pages
from tests.conftest import CONFORMANCE, ROOT

DOCS = ROOT / "docs" / "lint"

# Rules whose examples need configuration (as the rule itself does).
EXAMPLE_CONFIG = {
    "DL3026": {"trustedRegistries": ["registry.example.com"]},
    "DL3049": {"label-schema": {"org.opencontainers.image.source": "url"}},
    "DL3050": {"label-schema": {"org.opencontainers.image.version": "semver"},
               "strict-labels": True},
    "DL3051": {"label-schema": {"org.opencontainers.image.version": "text"}},
    "DL3052": {"label-schema": {"org.opencontainers.image.url": "url"}},
    "DL3053": {"label-schema": {"org.opencontainers.image.created": "rfc3339"}},
    "DL3054": {"label-schema": {"org.opencontainers.image.licenses": "spdx"}},
    "DL3055": {"label-schema": {"org.opencontainers.image.revision": "hash"}},
    "DL3056": {"label-schema": {"org.opencontainers.image.version": "semver"}},
    "DL3058": {"label-schema": {"maintainer": "email"}},
}


def _config(code: str) -> LintConfig:
    cfg = LintConfig(enabled=frozenset({code})).merge(EXAMPLE_CONFIG.get(code, {}), "test")
    if code == "CopyIgnoredFile":  # its example's .dockerignore (the CLI reads the real one)
        cfg = replace(cfg, dockerignore=("*.md",))
    return cfg


def _dockerfile(example: str) -> str:
    if any(ln.split(None, 1)[:1] in (["FROM"], ["from"]) for ln in example.splitlines()):
        return example + "\n"
    return "FROM debian:12.5\n" + example + "\n"


def test_there_are_71_hadolint_codes_and_all_exist() -> None:
    assert len(HADOLINT_CODES) == len(set(HADOLINT_CODES)) == 71
    assert [c for c in HADOLINT_CODES if c not in RULES] == []


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_has_its_generated_page(code: str) -> None:
    page = DOCS / f"{code}.md"
    assert page.is_file(), f"missing {page}: run python3 docs/lint/generate.py"
    assert page.read_text() == pages()[f"{code}.md"], "stale: run docs/lint/generate.py"


def test_index_page_is_current() -> None:
    assert (DOCS / "rules.md").read_text() == pages()["rules.md"]


def test_coverage_report_is_current() -> None:
    if not (CONFORMANCE / "hadolint" / "rules.tsv").is_file():
        pytest.skip("conformance corpus not found; coverage.md needs rules.tsv")
    assert (DOCS / "coverage.md").read_text() == pages(CONFORMANCE)["coverage.md"], \
        "stale: run python3 docs/lint/generate.py --corpus ../shared/conformance"


@pytest.mark.parametrize("code", sorted(RULES))
def test_examples_do_what_the_page_says(code: str) -> None:
    r = RULES[code]
    assert r.why and r.fix and r.bad and r.good, f"{code} lacks docs metadata"
    cfg = _config(code)
    bad = [f.code for f in lint_text(_dockerfile(r.bad), "Dockerfile", cfg)]
    good = [f.code for f in lint_text(_dockerfile(r.good), "Dockerfile", cfg)]
    assert code in bad, f"{code}: 'Reported' example does not trigger it: {r.bad!r}"
    assert code not in good, f"{code}: 'Not reported' example triggers it: {r.good!r}"
