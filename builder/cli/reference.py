"""The CLI reference page (docs/cli.md), generated from the real command tree so it cannot
drift: `python3 -m builder.cli.reference > docs/cli.md`; a test keeps the file current."""

from __future__ import annotations

import sys

from builder.cli.app import _COMMAND

_HEADER = """# CLI reference

Generated from the command definitions by `python3 -m builder.cli.reference > docs/cli.md`
(a test fails when this page is stale). `pybuild -f Dockerfile .` is `pybuild build -f
Dockerfile .`: a first word that is not a command means `build`, as with `docker build`.

Exit codes: 0 ok · 1 build failed / lint findings at or above the threshold · 2 usage ·
3 invalid Dockerfile · 4 environment (no namespaces, missing tool) · 5 registry/network ·
70 internal error (a bug: re-run with `PYBUILD_DEBUG=1` for the traceback) · 130 interrupted.

Details by area: [build and cache](build.md) · [parse errors](parse-errors.md) ·
[graph and semantics](semantics.md) · [images and the store](store.md) ·
[image formats](image-formats.md) · [sandbox, `info`, `run`](sandbox.md) ·
[lint](lint/index.md).
"""


def _param_line(param) -> str:
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    if param.param_type_name == "argument":
        names = f"`{param.human_readable_name}`"
    text = " ".join(param.help.split()) if getattr(param, "help", None) else ""
    details = []
    if param.param_type_name == "option" and not param.is_flag:
        choices = getattr(param.type, "choices", None)
        if choices:
            details.append("one of: " + ", ".join(f"`{c}`" for c in choices))
    if param.multiple:
        details.append("repeatable")
    if getattr(param, "envvar", None):
        details.append(f"env `{param.envvar}`")
    if param.required:
        details.append("required")
    extra = f" ({'; '.join(details)})" if details else ""
    return f"- {names}" + (f": {text}" if text else "") + extra


def render() -> str:
    """The whole reference page as Markdown."""
    out = [_HEADER, "## Global options", ""]
    out += [_param_line(p) for p in _COMMAND.params if p.name != "help"]
    for name, cmd in sorted(_COMMAND.commands.items()):  # type: ignore[attr-defined]
        out += ["", f"## `pybuild {name}`", ""]
        if cmd.help:
            out += [" ".join(cmd.help.split()), ""]
        params = [p for p in cmd.params if p.name != "help"]
        out += [_param_line(p) for p in params] or ["(no options)"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
