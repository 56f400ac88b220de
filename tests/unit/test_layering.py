"""DESIGN.md §1 layer rules, checked by reading every module's imports with the ast module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "builder"

# Longest matching prefix wins. Lower number = lower layer.
LAYERS: dict[str, int] = {
    "builder": 0,
    "builder.__main__": 5,
    "builder.source": 0,
    "builder.errors": 0,
    "builder.digest": 0,
    "builder.buildstamp": 0,
    "builder.storeroot": 0,
    "builder.events": 0,
    "builder.syntax.nodes": 1,
    "builder.graph": 1,
    "builder.patternmatcher": 1,
    "builder.oci.model": 1,
    "builder.oci.reference": 1,
    "builder.oci.media": 1,
    "builder.sandbox.spec": 1,
    "builder.syntax": 2,
    "builder.frontend": 2,
    "builder.lint": 2,
    "builder.executor.cachekey": 2,
    "builder.run.spec": 2,
    "builder.store": 3,
    "builder.oci": 3,
    "builder.snapshot": 3,
    "builder.sandbox": 3,
    "builder.registry": 3,
    "builder.context": 3,
    "builder.executor": 4,
    "builder.buildrecord": 4,
    "builder.cache": 4,
    "builder.export": 4,
    "builder.run": 4,
    "builder.api": 4,
    "builder.cli": 5,
}
NEVER = {
    # Below the front end nothing knows Dockerfile syntax.
    "builder.executor": ("builder.syntax", "builder.frontend", "builder.lint"),
    "builder.sandbox": ("builder.syntax", "builder.frontend", "builder.lint"),
    "builder.oci": ("builder.syntax", "builder.frontend", "builder.lint"),
    "builder.registry": ("builder.syntax", "builder.frontend", "builder.lint"),
    "builder.cache": ("builder.syntax", "builder.frontend", "builder.lint",
                      "builder.executor"),
}
CLI_ONLY_IMPORTS = ("typer", "tqdm", "click")
LARK_ONLY_IN = "builder.syntax"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(name: str) -> int:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[best]


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _imports(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not Path(PKG.parent, *base).is_dir():
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            out += [(f"{target}.{a.name}", node.lineno) for a in node.names]
    return out


MODULES = sorted(PKG.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_module_respects_layers(path: Path) -> None:
    module = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    mine = _layer(module)
    problems = []
    for target, line in _imports(tree, module):
        top = target.split(".")[0]
        if top == "builder" and _is(target, "builder"):
            # `from builder.x import name` also yields builder.x.name; judge by the module part.
            if _layer(target) > mine and not _is(module, "builder.cli"):
                problems.append(f"line {line}: {module} (layer {mine}) imports {target} "
                                f"(layer {_layer(target)})")
            for owner, banned in NEVER.items():
                if _is(module, owner) and any(_is(target, b) for b in banned):
                    problems.append(f"line {line}: {module} must not import {target}")
        if top in CLI_ONLY_IMPORTS and not _is(module, "builder.cli"):
            problems.append(f"line {line}: only builder.cli may import {top}")
        if top == "lark" and not _is(module, LARK_ONLY_IN):
            problems.append(f"line {line}: only builder.syntax may import lark")
    if not _is(module, "builder.cli"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name) and fn.id == "print":
                    problems.append(f"line {node.lineno}: print() outside builder.cli")
                if (isinstance(fn, ast.Attribute) and fn.attr == "exit"
                        and isinstance(fn.value, ast.Name) and fn.value.id == "sys"):
                    problems.append(f"line {node.lineno}: sys.exit() outside builder.cli")
    assert not problems, "\n".join(problems)


def test_every_module_is_classified() -> None:
    for path in MODULES:
        _layer(_module_name(path))  # max() of an empty sequence raises for an unknown module
