"""Reading ../shared/conformance/hadolint/rules.tsv (encoding described in its README)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


def decode(cell: str) -> str:
    """Undo the TSV escaping: `\\\\` → `\\`, `\\n`, `\\t`, `\\r`, left to right."""
    out: list[str] = []
    i = 0
    while i < len(cell):
        c = cell[i]
        if c == "\\" and i + 1 < len(cell):
            nxt = cell[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Row:
    rule_id: str
    should_trigger: bool
    text: str
    expected_count: str
    variant: str
    config: dict
    where: str
    hadolint_count: int

    def dockerfile(self) -> str:
        """The text as upstream's harness lints it (one `\\n` appended; the onbuild variant
        rewrites each top-level RUN to ONBUILD RUN, as the README says)."""
        text = self.text + "\n"
        if self.variant == "onbuild":
            text = "\n".join("ONBUILD " + ln if ln.startswith("RUN") else ln
                             for ln in text.split("\n"))
        return text

    def satisfied_by(self, count: int) -> bool:
        if self.expected_count.startswith(">="):
            return count >= int(self.expected_count[2:])
        return count == int(self.expected_count)


def rows(corpus: Path) -> list[Row]:
    path = corpus / "hadolint" / "rules.tsv"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Row(r["rule_id"], r["should_trigger"] == "yes", decode(r["dockerfile_text"]),
                    r["expected_count"], r["variant"],
                    {} if r["config"] == "default" else json.loads(r["config"]),
                    f"{r['spec_file']}:{r['spec_line']}", int(r["hadolint_2.15.1_count"]))
                for r in reader]
