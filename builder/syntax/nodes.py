"""The Dockerfile AST: frozen dataclasses with source spans and raw (unexpanded) strings.

Contract shared by the parser (builder.syntax), the front end and the linter:
- Every instruction carries `keyword` (upper-case canonical name, e.g. "RUN"), `written`
  (the keyword as the user spelled it, for casing checks), `span` (from the keyword to the end
  of the last continuation or heredoc line), `flags`, `original` (the instruction text with
  continuations joined, as BuildKit's `Node.Original`), `args` and `json` (the argument list
  and JSON-form attribute of BuildKit's parser node, used for the `buildkit` dump format),
  and `heredocs`.
- Strings are raw: no `$VAR` expansion has been done; quotes in shell form are kept.
- Typed subclasses add the fields each instruction means (image, command, pairs, …).
No Lark object ever appears here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.errors import Diagnostic
from builder.source import Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """An instruction flag: `--name=value` (value is the raw text) or `--name` (value None)."""

    name: str
    value: str | None
    span: Span

    def __str__(self) -> str:
        return f"--{self.name}" if self.value is None else f"--{self.name}={self.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Heredoc:
    """One here-document body attached to RUN/COPY/ADD.

    `name` is the delimiter word; `expand` is False when the delimiter was quoted (no
    variable expansion); `chomp_tabs` is True for `<<-` (leading tabs stripped from the
    content already); `file_descriptor` is the redirect number (0 when not given).
    `content` ends with a newline as BuildKit stores it.
    """

    name: str
    content: str
    expand: bool = True
    chomp_tabs: bool = False
    file_descriptor: int = 0
    span: Span | None = None
    # The body exactly as read (before `<<-` tab stripping); None when equal to `content`.
    raw_content: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """The command of RUN, CMD, ENTRYPOINT or HEALTHCHECK CMD.

    Exec form: `exec_form` True and `argv` the JSON array. Shell form: `script` is the raw
    command text (continuations joined, unexpanded). Heredoc commands keep the heredoc
    bodies on the instruction.
    """

    exec_form: bool
    argv: tuple[str, ...] = ()
    script: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyValue:
    """One ENV or LABEL pair. `legacy` is True for the space form (`ENV key value`)."""

    key: str
    value: str
    legacy: bool = False
    span: Span | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgDecl:
    """One `ARG name[=default]` declaration (default None when none was given)."""

    name: str
    default: str | None
    span: Span | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    """Fields every instruction has (see the module docstring)."""

    keyword: str
    written: str
    span: Span
    original: str
    flags: tuple[Flag, ...] = ()
    args: tuple[str, ...] = ()
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> Flag | None:
        """The last flag called `name` (BuildKit: a repeated non-list flag takes the last)."""
        for f in reversed(self.flags):
            if f.name == name:
                return f
        return None

    def flag_values(self, name: str) -> tuple[str | None, ...]:
        """All values of a repeatable flag (e.g. RUN --mount) in order."""
        return tuple(f.value for f in self.flags if f.name == name)


@dataclass(frozen=True, slots=True, kw_only=True)
class From(Instruction):
    image: str
    stage_name: str | None = None
    stage_name_span: Span | None = None
    as_written: str | None = None  # the AS keyword as spelled, for casing checks


@dataclass(frozen=True, slots=True, kw_only=True)
class Run(Instruction):
    command: Command


@dataclass(frozen=True, slots=True, kw_only=True)
class Cmd(Instruction):
    command: Command


@dataclass(frozen=True, slots=True, kw_only=True)
class Entrypoint(Instruction):
    command: Command


@dataclass(frozen=True, slots=True, kw_only=True)
class Shell(Instruction):
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(Instruction):
    """COPY: `sources` then `dest` (raw). Heredoc sources appear by delimiter name in `sources`
    and with their bodies in `heredocs`."""

    sources: tuple[str, ...]
    dest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Add(Instruction):
    sources: tuple[str, ...]
    dest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Arg(Instruction):
    decls: tuple[ArgDecl, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopsignal(Instruction):
    signal: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck(Instruction):
    """HEALTHCHECK [--interval …] CMD …, or HEALTHCHECK NONE (command None)."""

    command: Command | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Onbuild(Instruction):
    inner: Instruction


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintainer(Instruction):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """A parser directive at the top of the file: `# name=value`."""

    name: str
    value: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    """A comment line (not a directive); `text` is after the `#`, unstripped."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Dockerfile:
    """A parsed Dockerfile. `escape` is the active escape character ("\\" or "`")."""

    path: str
    instructions: tuple[Instruction, ...]
    directives: tuple[Directive, ...] = ()
    comments: tuple[Comment, ...] = ()
    escape: str = "\\"
    text: str = field(default="", repr=False)
    # Parser warnings BuildKit also gives (e.g. empty continuation lines), in file order.
    warnings: tuple[Diagnostic, ...] = ()

    def directive(self, name: str) -> str | None:
        for d in self.directives:
            if d.name == name:
                return d.value
        return None


# The 18 instructions BuildKit accepts, by canonical keyword.
INSTRUCTIONS: dict[str, type[Instruction]] = {
    "ADD": Add,
    "ARG": Arg,
    "CMD": Cmd,
    "COPY": Copy,
    "ENTRYPOINT": Entrypoint,
    "ENV": Env,
    "EXPOSE": Expose,
    "FROM": From,
    "HEALTHCHECK": Healthcheck,
    "LABEL": Label,
    "MAINTAINER": Maintainer,
    "ONBUILD": Onbuild,
    "RUN": Run,
    "SHELL": Shell,
    "STOPSIGNAL": Stopsignal,
    "USER": User,
    "VOLUME": Volume,
    "WORKDIR": Workdir,
}
