"""Render a parsed Dockerfile in BuildKit's shapes: the s-expression dump of BuildKit's
parser tests (`Node.Dump`) and a JSON list of parser nodes. Pure: returns strings."""

from __future__ import annotations

import json
from typing import Any

from builder.syntax import nodes
from builder.syntax.arguments import go_quote


def _dump_instruction(ins: nodes.Instruction) -> str:
    # Node.Dump: lower-cased keyword, ` %q` of the flag list, then each argument Go-quoted;
    # ONBUILD's trigger is dumped recursively in parentheses.
    parts = [ins.written.lower()]
    if ins.flags:
        parts.append("[" + " ".join(go_quote(str(f)) for f in ins.flags) + "]")
    if isinstance(ins, nodes.Onbuild):
        if ins.inner.written:
            parts.append("(" + _dump_instruction(ins.inner) + ")")
    else:
        parts.extend(go_quote(a) for a in ins.args)
    return " ".join(parts).strip()


def buildkit_dump(dockerfile: nodes.Dockerfile) -> str:
    """Exactly the text of BuildKit's parser test `result` files (ends with a newline)."""
    return "".join("(" + _dump_instruction(i) + ")\n" for i in dockerfile.instructions)


def instruction_json(ins: nodes.Instruction) -> dict[str, Any]:
    """One instruction as BuildKit's parser node: cmd (upper case), sub_cmd (ONBUILD's
    trigger), json, flags, value, start_line, end_line, original, heredocs. For ONBUILD,
    json/flags/value describe the trigger instruction."""
    target = ins.inner if isinstance(ins, nodes.Onbuild) else ins
    return {
        "cmd": ins.keyword,
        "sub_cmd": (ins.inner.keyword or None) if isinstance(ins, nodes.Onbuild) else None,
        "json": target.json,
        "flags": [str(f) for f in target.flags],
        "value": list(target.args),
        "start_line": ins.span.line,
        "end_line": ins.span.end_line,
        "original": ins.original,
        "heredocs": [
            {"name": h.name, "file_descriptor": h.file_descriptor, "expand": h.expand,
             "chomp": h.chomp_tabs,
             "content": h.raw_content if h.raw_content is not None else h.content}
            for h in ins.heredocs
        ],
    }


def json_dump(dockerfile: nodes.Dockerfile) -> str:
    """A JSON array of instruction objects (see instruction_json), with a final newline."""
    return json.dumps([instruction_json(i) for i in dockerfile.instructions],
                      ensure_ascii=False, indent=None) + "\n"
