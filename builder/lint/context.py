"""What a rule sees while it checks one Dockerfile: instructions (ONBUILD triggers unwrapped),
stages, parsed RUN scripts, the configuration, and how to make a Finding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from builder.errors import Severity
from builder.lint import shell
from builder.lint.config import LintConfig
from builder.lint.finding import Finding
from builder.lint.rule import REGISTRY
from builder.syntax import nodes as n

InsT = TypeVar("InsT", bound=n.Instruction)

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})


@dataclass(frozen=True, slots=True)
class Item:
    """An instruction in file order. For `ONBUILD X`, `instr` is X and `outer` the ONBUILD
    (hadolint checks most rules on ONBUILD triggers too); `stage` is the 0-based index of the
    stage it belongs to (-1 before the first FROM)."""

    instr: n.Instruction
    outer: n.Onbuild | None
    stage: int

    @property
    def line(self) -> int:
        return (self.outer or self.instr).span.line


@dataclass(frozen=True, slots=True)
class Stage:
    index: int
    from_: n.From
    items: tuple[Item, ...]

    @property
    def name(self) -> str | None:
        return self.from_.stage_name


class Context:
    """Per-Dockerfile state shared by all rules. Cheap to build; parses RUN scripts lazily
    (once each)."""

    def __init__(self, dockerfile: n.Dockerfile, config: LintConfig) -> None:
        self.df = dockerfile
        self.config = config
        self._lines = dockerfile.text.splitlines()
        items: list[Item] = []
        stage = -1
        for ins in dockerfile.instructions:
            if isinstance(ins, n.From):
                stage += 1
            if isinstance(ins, n.Onbuild):
                items.append(Item(ins, None, stage))
                items.append(Item(ins.inner, ins, stage))
            else:
                items.append(Item(ins, None, stage))
        self.items: tuple[Item, ...] = tuple(items)
        self._scripts: dict[int, shell.Script] = {}
        # Instructions by exact node class, so a rule asking for one kind does not scan all.
        self._by_type: dict[type, list[Item]] = {}
        for it in self.items:
            self._by_type.setdefault(type(it.instr), []).append(it)

    # -- instructions -------------------------------------------------------------------
    def each(self, kind: type[InsT], *, onbuild: bool = True) -> Iterator[tuple[InsT, Item]]:
        """Instructions of one type in file order (with ONBUILD triggers unless told not)."""
        for it in self._by_type.get(kind, ()):
            if onbuild or it.outer is None:
                yield it.instr, it  # type: ignore[misc]

    @cached_property
    def stages(self) -> tuple[Stage, ...]:
        out: list[Stage] = []
        for idx, it in enumerate(self.items):
            if isinstance(it.instr, n.From) and it.outer is None:
                body = []
                for later in self.items[idx + 1:]:
                    if isinstance(later.instr, n.From) and later.outer is None:
                        break
                    body.append(later)
                out.append(Stage(len(out), it.instr, tuple(body)))
        return tuple(out)

    # -- shell --------------------------------------------------------------------------
    def script(self, ins: n.Instruction) -> shell.Script:
        """The shell commands a RUN (or CMD/ENTRYPOINT/HEALTHCHECK) runs.

        Exec form is joined with spaces (hadolint does the same). A RUN whose command is just
        a here-document fed to the shell (`RUN <<EOF`, `RUN bash <<EOF`) is the heredoc
        body — hadolint 2.15.1 does not look inside heredocs; we do."""
        key = id(ins)
        got = self._scripts.get(key)
        if got is None:
            got = shell.parse(script_text(ins))
            self._scripts[key] = got
        return got

    # -- findings -----------------------------------------------------------------------
    def finding(self, code: str, where: Item | n.Instruction, message: str | None = None,
                *, line: int | None = None) -> Finding:
        rule = REGISTRY[code]
        ins = where.outer or where.instr if isinstance(where, Item) else where
        span = ins.span
        if line is not None and line != span.line:
            from builder.source import Span

            span = Span(span.file, line, 1, line, 1 + len(self.line_text(line)))
        sev = self.config.override.get(code, rule.severity)
        return Finding(code, sev, message or rule.message, span, self.line_text(span.line),
                       rule.url)

    def line_text(self, line: int) -> str:
        return self._lines[line - 1] if 0 < line <= len(self._lines) else ""

    def severity(self, code: str) -> Severity:
        return self.config.override.get(code, REGISTRY[code].severity)


def script_text(ins: n.Instruction) -> str:
    cmd = getattr(ins, "command", None)
    if cmd is None:
        return ""
    if cmd.exec_form:
        return " ".join(cmd.argv)
    text = cmd.script
    if ins.heredocs:
        words = text.split()
        if words and (
            (len(words) == 1 and words[0].startswith("<<"))
            or (len(words) == 2 and words[0].rsplit("/", 1)[-1] in _SHELLS
                and words[1].startswith("<<"))
        ):
            return ins.heredocs[0].content
    return text
