"""Hand-built AST nodes for planner unit tests (independent of the parser)."""

from __future__ import annotations

from builder.source import Span
from builder.syntax import nodes as n

FILE = "Dockerfile"


class Kit:
    """Builds instructions on consecutive lines of a fake Dockerfile and keeps its text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.instructions: list[n.Instruction] = []

    def _span(self, text: str) -> Span:
        self.lines.append(text)
        line = len(self.lines)
        return Span(FILE, line, 1, line, len(text) + 1)

    def flag_objs(self, text: str, flags: dict[str, str | None] | None) -> tuple[n.Flag, ...]:
        out = []
        line = len(self.lines)
        for name, value in (flags or {}).items():
            raw = f"--{name}" if value is None else f"--{name}={value}"
            col = text.find(raw) + 1 or 1
            out.append(n.Flag(name=name.split("#")[0], value=value,
                              span=Span(FILE, line, col, line, col + len(raw))))
        return tuple(out)

    def add(self, cls: type[n.Instruction], text: str, flags: dict | None = None,
            **fields: object) -> n.Instruction:
        span = self._span(text)
        keyword = text.split()[0].upper()
        inst = cls(keyword=keyword, written=text.split()[0], span=span, original=text,
                   flags=self.flag_objs(text, flags), **fields)  # type: ignore[arg-type]
        self.instructions.append(inst)
        return inst

    def frm(self, image: str, name: str | None = None, flags: dict | None = None) -> None:
        text = "FROM " + " ".join(f"--{k}={v}" for k, v in (flags or {}).items()) + \
            (" " if flags else "") + image + (f" AS {name}" if name else "")
        self.add(n.From, text, flags, image=image, stage_name=name)

    def run(self, script: str, flags: dict | None = None) -> None:
        fl = " ".join(f"--{k}={v}" for k, v in (flags or {}).items())
        self.add(n.Run, f"RUN {fl} {script}".replace("  ", " "), flags,
                 command=n.Command(exec_form=False, script=script))

    def run_exec(self, *argv: str) -> None:
        self.add(n.Run, "RUN " + repr(list(argv)), json=True,
                 command=n.Command(exec_form=True, argv=argv))

    def arg(self, name: str, default: str | None = None) -> None:
        text = f"ARG {name}" + (f"={default}" if default is not None else "")
        self.add(n.Arg, text, decls=(n.ArgDecl(name=name, default=default),))

    def env(self, **pairs: str) -> None:
        text = "ENV " + " ".join(f"{k}={v}" for k, v in pairs.items())
        self.add(n.Env, text, pairs=tuple(n.KeyValue(key=k, value=v) for k, v in pairs.items()))

    def copy(self, *paths: str, flags: dict | None = None, add: bool = False) -> None:
        fl = " ".join(f"--{k}={v}" for k, v in (flags or {}).items())
        kw = "ADD" if add else "COPY"
        self.add(n.Add if add else n.Copy, f"{kw} {fl} {' '.join(paths)}".replace("  ", " "),
                 flags, sources=paths[:-1], dest=paths[-1])

    def workdir(self, path: str) -> None:
        self.add(n.Workdir, f"WORKDIR {path}", path=path)

    def cmd(self, script: str | None = None, argv: tuple[str, ...] | None = None) -> None:
        c = (n.Command(exec_form=True, argv=argv) if argv is not None
             else n.Command(exec_form=False, script=script or ""))
        self.add(n.Cmd, f"CMD {script if argv is None else list(argv)}", command=c)

    def entrypoint(self, script: str | None = None, argv: tuple[str, ...] | None = None) -> None:
        c = (n.Command(exec_form=True, argv=argv) if argv is not None
             else n.Command(exec_form=False, script=script or ""))
        self.add(n.Entrypoint, f"ENTRYPOINT {script if argv is None else list(argv)}", command=c)

    def dockerfile(self) -> n.Dockerfile:
        return n.Dockerfile(path=FILE, instructions=tuple(self.instructions),
                            text="\n".join(self.lines) + "\n")
