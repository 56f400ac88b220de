"""Findings → report text in the formats CI systems read (pure: returns strings).

json = hadolint's schema (`[{"code","column","file","level","line","message"}]`), sarif =
SARIF 2.1.0, checkstyle = Checkstyle 4.3 XML, gitlab_codeclimate = GitLab Code Quality
(Code Climate issues), github = GitHub Actions workflow commands, junit = JUnit XML. The
human `tty` format lives in builder.cli (it decides about colour).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from builder import __version__
from builder.errors import Severity
from builder.lint.finding import Finding
from builder.lint.rule import REGISTRY

FORMATS = ("tty", "json", "sarif", "checkstyle", "gitlab_codeclimate", "github", "junit")


def to_json(findings: Sequence[Finding]) -> str:
    return json.dumps([{"code": f.code, "column": f.column, "file": f.span.file,
                        "level": f.severity.value, "line": f.line, "message": f.message}
                       for f in findings])


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note",
                Severity.STYLE: "note"}


def to_sarif(findings: Sequence[Finding]) -> str:
    codes = sorted({f.code for f in findings})
    rules = []
    for code in codes:
        r = REGISTRY.get(code)
        entry: dict[str, object] = {"id": code}
        if r is not None:
            entry["shortDescription"] = {"text": r.message}
            entry["helpUri"] = r.url
            entry["defaultConfiguration"] = {"level": _SARIF_LEVEL[r.severity]}
        rules.append(entry)
    index = {c: i for i, c in enumerate(codes)}
    results = [{
        "ruleId": f.code, "ruleIndex": index[f.code], "level": _SARIF_LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": f.span.file},
            "region": {"startLine": f.line, "startColumn": f.column,
                       "endLine": max(f.span.end_line, f.line)}}}],
    } for f in findings]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "pybuild-lint", "version": __version__,
                                      "informationUri": "https://github.com/hadolint/hadolint",
                                      "rules": rules}},
                  "results": results}],
    }
    return json.dumps(doc, indent=2)


def to_checkstyle(findings: Sequence[Finding], files: Sequence[str]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<checkstyle version="4.3">']
    for name in files:
        out.append(f"<file name={quoteattr(name)}>")
        for f in findings:
            if f.span.file == name:
                out.append(f"<error line=\"{f.line}\" column=\"{f.column}\" "
                           f"severity={quoteattr(f.severity.value)} "
                           f"message={quoteattr(f.message)} source={quoteattr(f.code)}/>")
        out.append("</file>")
    out.append("</checkstyle>")
    return "\n".join(out)


_CC_SEVERITY = {Severity.ERROR: "blocker", Severity.WARNING: "major", Severity.INFO: "info",
                Severity.STYLE: "minor"}


def to_codeclimate(findings: Sequence[Finding]) -> str:
    issues = []
    for f in findings:
        fp = hashlib.sha256(f"{f.span.file}:{f.line}:{f.column}:{f.code}:{f.message}"
                            .encode()).hexdigest()
        issues.append({"type": "issue", "check_name": f.code, "description": f.message,
                       "categories": ["Bug Risk" if f.severity is Severity.ERROR else "Style"],
                       "fingerprint": fp, "severity": _CC_SEVERITY[f.severity],
                       "location": {"path": f.span.file, "lines": {"begin": f.line,
                                                                   "end": f.line}}})
    return json.dumps(issues, indent=2)


_GH_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice",
             Severity.STYLE: "notice"}


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def to_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: one `::level file=…,line=…::message` per finding."""
    return "\n".join(
        f"::{_GH_LEVEL[f.severity]} file={_gh_escape(f.span.file, True)},line={f.line},"
        f"col={f.column},title={_gh_escape(f.code, True)}::{_gh_escape(f.message)}"
        for f in findings)


def to_junit(findings: Sequence[Finding], files: Sequence[str]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuites name="pybuild lint" tests="{max(len(files), 1)}" '
           f'failures="{len(findings)}">']
    for name in files:
        mine = [f for f in findings if f.span.file == name]
        out.append(f"<testsuite name={quoteattr(name)} tests=\"{max(len(mine), 1)}\" "
                   f"failures=\"{len(mine)}\">")
        if not mine:
            out.append(f"<testcase name={quoteattr(name)} classname={quoteattr(name)}/>")
        for f in mine:
            out.append(f"<testcase name={quoteattr(f'{f.code} line {f.line}')} "
                       f"classname={quoteattr(name)}>")
            out.append(f"<failure message={quoteattr(f.message)} "
                       f"type={quoteattr(f.severity.value)}>"
                       f"{f.span.file}:{f.line}:{f.column} {f.code}</failure>")
            out.append("</testcase>")
        out.append("</testsuite>")
    out.append("</testsuites>")
    return "\n".join(out)


def render(fmt: str, findings: Sequence[Finding], files: Sequence[str]) -> str:
    """Text of one machine-readable report (not `tty`)."""
    if fmt == "json":
        return to_json(findings)
    if fmt == "sarif":
        return to_sarif(findings)
    if fmt == "checkstyle":
        return to_checkstyle(findings, files)
    if fmt == "gitlab_codeclimate":
        return to_codeclimate(findings)
    if fmt == "github":
        return to_github(findings)
    if fmt == "junit":
        return to_junit(findings, files)
    raise ValueError(f"unknown format {fmt!r}")


THRESHOLD_RANK = {"error": 0, "warning": 1, "info": 2, "style": 3}


def fails(findings: Sequence[Finding], threshold: str) -> bool:
    """True when some finding is at or above `threshold` (`none` never fails)."""
    if threshold == "none":
        return False
    limit = THRESHOLD_RANK[threshold]
    return any(f.severity.rank <= limit for f in findings)
