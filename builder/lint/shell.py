"""Shell scripts of RUN instructions → the simple commands in them (name, words, flags).

Parsing is done by tree-sitter's bash grammar (PyPI `tree-sitter` + `tree-sitter-bash`, MIT):
a real, error-tolerant shell parser written in C, so compound commands, subshells, command
substitutions, quoting and here-documents are understood and linting stays fast. Words are
flattened the way hadolint (via ShellCheck's `oversimplify`) sees them: quotes removed,
literal parts concatenated, every expansion (`$x`, `${x}`, `$(…)`, `` `…` ``, `$((…))`)
replaced by the placeholder `${VAR}`.

Flags follow hadolint's convention: `--name=value` is the flag `name`; `-abc` is the three
flags `a`, `b`, `c`; `-` and `--` are not flags. A flag's value is never attached to it, so
`getArgsNoFlags`-style package lists include flag values unless a rule drops them
(`Command.without_flag_values`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter
import tree_sitter_bash

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
EXPANSION = "${VAR}"
_EXPANSIONS = frozenset({"simple_expansion", "expansion", "command_substitution",
                         "arithmetic_expansion", "process_substitution"})


@dataclass(frozen=True, slots=True)
class Word:
    """One argument: `text` as hadolint sees it; `index` its position in the command."""

    text: str
    index: int


class Command:
    """A simple command: its name, arguments (without the name) and prefix assignments.

    Words are flattened on first use: most rules look only at the name."""

    __slots__ = ("name", "env", "_words", "_nodes", "_src", "_args", "_flags")

    def __init__(self, name: str, words: tuple[Word, ...] | None = None,
                 env: tuple[tuple[str, str], ...] = (), *,
                 nodes: tuple[tree_sitter.Node, ...] = (), src: bytes = b"") -> None:
        self.name = name
        self.env = env
        self._words = words
        self._nodes = nodes
        self._src = src
        self._args: tuple[str, ...] | None = None
        self._flags: tuple[str, ...] | None = None

    @property
    def words(self) -> tuple[Word, ...]:
        if self._words is None:
            self._words = tuple(Word(_flatten(nd, self._src), i)
                                for i, nd in enumerate(self._nodes))
            self._nodes = ()
        return self._words

    def __repr__(self) -> str:
        return f"Command(name={self.name!r}, words={self.words!r}, env={self.env!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Command) and (self.name, self.words, self.env) == (
            other.name, other.words, other.env)

    def __hash__(self) -> int:
        return hash((self.name, self.words, self.env))

    @property
    def args(self) -> tuple[str, ...]:
        if self._args is None:
            self._args = tuple(w.text for w in self.words)
        return self._args

    @property
    def flags(self) -> tuple[str, ...]:
        """Flag names in order (see the module docstring for the splitting convention)."""
        if self._flags is None:
            out: list[str] = []
            for a in self.args:
                if a[:1] == "-":
                    out.extend(_flag_names(a))
            self._flags = tuple(out)
        return self._flags

    def has_flag(self, *names: str) -> bool:
        fl = self.flags
        return any(n in fl for n in names)

    def has_arg(self, *args: str) -> bool:
        return any(a in args for a in self.args)

    def has_arg_prefix(self, prefix: str) -> bool:
        return any(a.startswith(prefix) for a in self.args)

    def args_no_flags(self) -> tuple[str, ...]:
        """Arguments that are not flags (flag values are kept, as hadolint's getArgsNoFlags)."""
        return tuple(w.text for w in self.words if not _flag_names(w.text))

    def without_flag_values(self, *flag_names: str) -> Command:
        """A copy without the word following each of the given flags (hadolint dropFlagArg).

        Only flags written as separate words are considered (`-t value`, `--opt value`)."""
        drop: set[int] = set()
        for i, w in enumerate(self.words):
            names = _flag_names(w.text)
            if names and any(n in flag_names for n in names) and "=" not in w.text:
                if i + 1 < len(self.words):
                    drop.add(i + 1)
        return Command(self.name, tuple(w for i, w in enumerate(self.words) if i not in drop))

    def flag_value(self, *names: str) -> str | None:
        """The value of `--name=value`, `--name value` or `-n value` (first occurrence)."""
        for i, w in enumerate(self.words):
            t = w.text
            for n in names:
                long = f"--{n}" if len(n) > 1 else f"-{n}"
                if t.startswith(long + "="):
                    return t[len(long) + 1:]
                if t == long and i + 1 < len(self.words):
                    return self.words[i + 1].text
        return None


def _flag_names(text: str) -> list[str]:
    if text in ("-", "--") or not text.startswith("-"):
        return []
    if text.startswith("--"):
        return [text[2:].split("=", 1)[0]]
    return list(text[1:])


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed shell script: its commands in source order and whether it has a pipe."""

    text: str
    commands: tuple[Command, ...]
    has_pipes: bool
    variables: tuple[str, ...] = ()

    def named(self, *names: str) -> Iterator[Command]:
        return (c for c in self.commands if c.name in names)

    def uses(self, *names: str) -> bool:
        return any(c.name in names for c in self.commands)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.commands)


def _flatten(node: tree_sitter.Node, src: bytes) -> str:
    """The word as ShellCheck's oversimplify renders it (see the module docstring)."""
    t = node.type
    if t in _EXPANSIONS:
        return EXPANSION
    if t == "raw_string":
        return _text(node, src)[1:-1]
    if t == "ansi_c_string":
        return _text(node, src)[2:-1]
    if t in ("string", "translated_string", "concatenation"):
        return "".join(_flatten(c, src) for c in node.children
                       if c.type not in ('"', "$"))
    if t == "string_content":
        return _unescape(_text(node, src), in_double_quotes=True)
    if t in ("word", "number", "command_name"):
        if node.child_count and t != "word":
            return "".join(_flatten(c, src) for c in node.children)
        return _unescape(_text(node, src), in_double_quotes=False)
    if node.child_count:
        return "".join(_flatten(c, src) for c in node.children)
    return _text(node, src)


def _text(node: tree_sitter.Node, src: bytes) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


def _unescape(text: str, *, in_double_quotes: bool) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if not in_double_quotes or nxt in '$`"\\':
                out.append(nxt)
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _command(node: tree_sitter.Node, src: bytes) -> Command | None:
    t = node.type
    name = ""
    words: list[tree_sitter.Node] = []
    env: list[tuple[str, str]] = []
    for c in node.children:
        ct = c.type
        if ct == "variable_assignment" and t == "command":
            if not name:
                key = c.child_by_field_name("name")
                val = c.child_by_field_name("value")
                env.append((_text(key, src) if key else "",
                            _flatten(val, src) if val else ""))
            continue
        if ct in ("file_redirect", "herestring_redirect", "heredoc_redirect", "comment"):
            continue
        if t != "command":
            # declaration_command / unset_command: the keyword is the name.
            if not name:
                name = _text(c, src)
                continue
        elif ct == "command_name":
            name = _flatten(c, src)
            continue
        words.append(c)
    return Command(name, None, tuple(env), nodes=tuple(words), src=src) if name else None


# One query finds every simple command, pipeline and variable use in C; the Python side only
# flattens the words of the commands it gets back.
_QUERY = tree_sitter.Query(
    tree_sitter.Language(tree_sitter_bash.language()),
    "[(command) (declaration_command) (unset_command)] @cmd (pipeline) @pipe "
    "(simple_expansion (variable_name) @var) (expansion (variable_name) @var)")


@lru_cache(maxsize=4096)
def parse(text: str) -> Script:
    """Parse a shell script. Never raises: unparseable parts are skipped (tree-sitter recovers
    from errors), which is how hadolint treats scripts ShellCheck cannot parse either."""
    src = text.encode("utf-8", "surrogateescape")
    tree = _PARSER.parse(src)
    found = tree_sitter.QueryCursor(_QUERY).captures(tree.root_node)
    nodes = sorted(found.get("cmd", ()), key=lambda nd: nd.start_byte)
    commands = [c for c in (_command(nd, src) for nd in nodes) if c is not None]
    variables = [_text(v, src) for v in sorted(found.get("var", ()), key=lambda v: v.start_byte)]
    return Script(text, tuple(commands), bool(found.get("pipe")), tuple(variables))
