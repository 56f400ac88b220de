"""Linter configuration: hadolint's `.hadolint.yaml` keys, `[tool.pybuild.lint]` in
pyproject.toml, and the merge order (file < command line).

Keys (hadolint's spelling; pyproject accepts `-` or `_`): `ignored` (codes), `override`
(`{error|warning|info|style: [codes]}`), `trustedRegistries`, `failure-threshold`,
`label-schema` (`{label: text|url|spdx|rfc3339|hash|semver|email}`), `strict-labels`,
`no-fail`, `disable-ignore-pragma`, `enable` (codes of rules that are off by default).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.errors import Severity, UsageError

THRESHOLDS = ("error", "warning", "info", "style", "none")
LABEL_TYPES = ("text", "url", "spdx", "rfc3339", "hash", "semver", "email")


@dataclass(frozen=True)
class LintConfig:
    """Everything that changes what the linter reports. Immutable; build with `merge`."""

    ignored: frozenset[str] = frozenset()
    override: dict[str, Severity] = field(default_factory=dict)
    trusted_registries: tuple[str, ...] = ()
    failure_threshold: str = "info"
    label_schema: dict[str, str] = field(default_factory=dict)
    strict_labels: bool = False
    no_fail: bool = False
    disable_ignore_pragma: bool = False
    enabled: frozenset[str] = frozenset()
    shellcheck: bool = False
    # Patterns of the .dockerignore that applies (None: unknown, e.g. standard input);
    # filled in per file by the CLI, read by CopyIgnoredFile.
    dockerignore: tuple[str, ...] | None = None

    def merge(self, data: dict[str, Any], origin: str) -> LintConfig:
        """A copy updated from a hadolint-style mapping; raises UsageError naming `origin`."""
        data = {k.replace("_", "-"): v for k, v in data.items()}
        out = self
        try:
            if "ignored" in data:
                out = replace(out, ignored=out.ignored | _codes(data["ignored"]))
            if "override" in data:
                ov = dict(out.override)
                for level, codes in (data["override"] or {}).items():
                    sev = Severity(str(level).replace("-rules", "").lower())
                    for code in _codes(codes):
                        ov[code] = sev
                out = replace(out, override=ov)
            if "trustedRegistries" in data or "trustedregistries" in data:
                regs = data.get("trustedRegistries", data.get("trustedregistries")) or []
                out = replace(out, trusted_registries=out.trusted_registries
                              + tuple(str(r) for r in regs))
            if "failure-threshold" in data:
                thr = str(data["failure-threshold"]).lower()
                if thr not in THRESHOLDS:
                    raise ValueError(f"failure-threshold must be one of {', '.join(THRESHOLDS)}")
                out = replace(out, failure_threshold=thr)
            if "label-schema" in data:
                schema = {str(k): str(v) for k, v in (data["label-schema"] or {}).items()}
                bad = [v for v in schema.values() if v not in LABEL_TYPES]
                if bad:
                    raise ValueError(f"unknown label type {bad[0]!r} (one of "
                                     f"{', '.join(LABEL_TYPES)})")
                out = replace(out, label_schema={**out.label_schema, **schema})
            for key, attr in (("strict-labels", "strict_labels"), ("no-fail", "no_fail"),
                              ("disable-ignore-pragma", "disable_ignore_pragma"),
                              ("shellcheck", "shellcheck")):
                if key in data:
                    out = replace(out, **{attr: bool(data[key])})  # type: ignore[arg-type]
            if "enable" in data:
                out = replace(out, enabled=out.enabled | _codes(data["enable"]))
        except (ValueError, TypeError, AttributeError) as err:
            raise UsageError(f"{origin}: invalid lint configuration: {err}",
                             hint="see docs/lint/index.md for the configuration keys") from err
        return out


def _codes(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    return frozenset(str(v).strip() for v in value)


def read_file(path: Path) -> dict[str, Any]:
    """The mapping in a .hadolint.yaml or a pyproject.toml ([tool.pybuild.lint]).

    Raises UsageError when the file cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read lint config {path}: {err.strerror}") from err
    if path.name == "pyproject.toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"{path}: invalid TOML: {err}") from err
        section = doc.get("tool", {}).get("pybuild", {}).get("lint", {})
        return dict(section) if isinstance(section, dict) else {}
    import yaml  # PyYAML: YAML is not ours to parse (anchors, flow style, block scalars)

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: invalid YAML: {err}") from err
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: the lint config must be a mapping")
    return doc


def discover(start: Path) -> list[Path]:
    """Config files that apply to a Dockerfile in `start`, lowest precedence first.

    Like hadolint: `.hadolint.yaml`/`.hadolint.yml` in the directory or a parent (first one
    found), else `$XDG_CONFIG_HOME/hadolint.yaml`; and `pyproject.toml` with a
    `[tool.pybuild.lint]` table in the directory or a parent (first one found)."""
    import os

    found: list[Path] = []
    start = start.resolve()
    dirs = [start, *start.parents]
    for d in dirs:
        p = d / "pyproject.toml"
        if p.is_file() and "[tool.pybuild.lint]" in p.read_text(errors="replace"):
            found.append(p)
            break
    for d in dirs:
        hits = [d / n for n in (".hadolint.yaml", ".hadolint.yml") if (d / n).is_file()]
        if hits:
            found.append(hits[0])
            break
    else:
        xdg = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
        for n in ("hadolint.yaml", "hadolint.yml"):
            if (xdg / n).is_file():
                found.append(xdg / n)
                break
    return found


def load(paths: list[Path], base: LintConfig | None = None) -> LintConfig:
    cfg = base or LintConfig()
    for p in paths:
        cfg = cfg.merge(read_file(p), str(p))
    return cfg
