"""`pybuild lint --fix`: rewrite what is safe to rewrite, touching only the characters that
change (comments, blank lines, indentation and continuations stay as written).

Safe rewrites (each keeps the build's meaning):
- instruction keywords to the file's majority casing (ConsistentInstructionCasing);
- the `AS` keyword to FROM's casing (FromAsCasing);
- stage names to lower case (StageNameCasing; BuildKit matches stage names
  case-insensitively, so references keep working);
- `MAINTAINER x` → `LABEL org.opencontainers.image.authors="x"` (DL4000,
  MaintainerDeprecated);
- `ENV key value` / `LABEL key value` → `key=value` (LegacyKeyValueFormat) when the value has
  no quotes or backslashes (wrapped in double quotes when it has spaces);
- EXPOSE protocols to lower case (ExposeProtoCasing).
Shell form → exec form (DL3025) is NOT rewritten: it changes what runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.syntax import nodes as n


@dataclass(frozen=True, order=True)
class Edit:
    """Replace text on 1-based `line` from 1-based column `start` (inclusive) to `end`
    (exclusive) with `text`."""

    line: int
    start: int
    end: int
    text: str
    code: str = ""


def _majority_upper(df: n.Dockerfile) -> bool:
    words = [i.written for i in df.instructions]
    return sum(w == w.upper() for w in words) >= sum(w == w.lower() for w in words)


def edits(df: n.Dockerfile) -> list[Edit]:
    """The edits --fix would make, in file order."""
    lines = df.text.split("\n")
    upper = _majority_upper(df)
    out: list[Edit] = []

    def keyword(ins: n.Instruction) -> None:
        want = ins.written.upper() if upper else ins.written.lower()
        if want != ins.written:
            c = ins.span.column
            out.append(Edit(ins.span.line, c, c + len(ins.written), want,
                            "ConsistentInstructionCasing"))

    for ins in df.instructions:
        line = lines[ins.span.line - 1] if ins.span.line - 1 < len(lines) else ""
        if isinstance(ins, n.Maintainer):
            if ins.span.end_line != ins.span.line:
                continue
            value = ins.name.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            value = value.replace("\\", "\\\\").replace('"', '\\"')
            kw = "LABEL" if upper else "label"
            start = ins.span.column
            out.append(Edit(ins.span.line, start, len(line.rstrip()) + 1,
                            f'{kw} org.opencontainers.image.authors="{value}"', "DL4000"))
            continue
        keyword(ins)
        target = ins.inner if isinstance(ins, n.Onbuild) else ins
        if isinstance(target, n.From) and target.stage_name and target.stage_name_span:
            sp = target.stage_name_span
            if target.stage_name != target.stage_name.lower():
                out.append(Edit(sp.line, sp.column, sp.column + len(target.stage_name),
                                target.stage_name.lower(), "StageNameCasing"))
            asw = target.as_written or ""
            want = asw.upper() if upper else asw.lower()  # FROM itself ends in this casing
            if asw and want != asw:
                text = lines[sp.line - 1]
                at = text.rfind(asw, 0, sp.column - 1)
                if at >= 0:
                    out.append(Edit(sp.line, at + 1, at + 1 + len(asw), want, "FromAsCasing"))
        if isinstance(target, n.Env | n.Label) and target is ins:
            for kv in target.pairs:
                if not kv.legacy or kv.span is None or kv.span.end_line != kv.span.line:
                    continue
                if any(ch in kv.value for ch in "\"'\\") or not kv.value:
                    continue
                # The legacy form is always the whole rest of the instruction.
                text = lines[kv.span.line - 1]
                end = len(text.rstrip()) + 1
                if not text[kv.span.column - 1:].startswith(kv.key):
                    continue
                value = f'"{kv.value}"' if any(ch.isspace() for ch in kv.value) else kv.value
                out.append(Edit(kv.span.line, kv.span.column, end, f"{kv.key}={value}",
                                "LegacyKeyValueFormat"))
        if isinstance(target, n.Expose) and target is ins and ins.span.end_line == ins.span.line:
            for port in target.ports:
                num, slash, proto = port.partition("/")
                if slash and proto != proto.lower():
                    at = line.find(port, ins.span.column - 1 + len(ins.written))
                    if at >= 0:
                        out.append(Edit(ins.span.line, at + 1, at + 1 + len(port),
                                        f"{num}/{proto.lower()}", "ExposeProtoCasing"))
    return sorted(out)


def apply(text: str, changes: list[Edit]) -> str:
    """Apply non-overlapping edits (later ones on a line first so columns stay valid)."""
    lines = text.split("\n")
    for e in sorted(changes, key=lambda e: (e.line, e.start), reverse=True):
        s = lines[e.line - 1]
        lines[e.line - 1] = s[:e.start - 1] + e.text + s[e.end - 1:]
    return "\n".join(lines)


def fix(df: n.Dockerfile) -> tuple[str, list[Edit]]:
    """The fixed text of `df` and the edits made."""
    changes = edits(df)
    return apply(df.text, changes), changes
