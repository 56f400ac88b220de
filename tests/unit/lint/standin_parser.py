"""A small Dockerfile → builder.syntax.nodes reader used by the lint tests ONLY while the real
parser (branch `parser`) has not landed. `parse()` prefers builder.syntax.parse when it exists.

It covers what the rule examples need: continuations, comments, directives, heredocs, flags,
JSON form, FROM … AS, ENV/LABEL pairs, ARG, EXPOSE, USER, WORKDIR, HEALTHCHECK, ONBUILD.
"""

from __future__ import annotations

import json
import re

from builder.errors import DockerfileError
from builder.source import Span
from builder.syntax import nodes as n


def parse(text: str, path: str = "Dockerfile") -> n.Dockerfile:
    try:
        from builder.syntax import parse as real  # type: ignore[attr-defined]
    except ImportError:
        return standin(text, path)
    return real(text, path)


_FLAG = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)(?:=(\"[^\"]*\"|\S*))?")


def _words(s: str) -> list[str]:
    out, cur, q, i = [], "", None, 0
    has = False
    while i < len(s):
        c = s[i]
        if q:
            if c == q:
                q = None
            elif c == "\\" and q == '"' and i + 1 < len(s):
                i += 1
                cur += s[i]
                i += 1
                continue
            else:
                cur += c
        elif c in "\"'":
            q = c
            has = True
        elif c == "\\" and i + 1 < len(s):
            i += 1
            cur += s[i]
        elif c.isspace():
            if cur or has:
                out.append(cur)
            cur, has = "", False
        else:
            cur += c
        i += 1
    if cur or has:
        out.append(cur)
    return out


def _pairs(rest: str, span: Span) -> tuple[n.KeyValue, ...]:
    words = _raw_words(rest)
    if words and "=" not in words[0]:
        key, _, value = rest.strip().partition(" ")
        return (n.KeyValue(key=key, value=value.strip(), legacy=True, span=span),)
    out = []
    for w in words:
        k, _, v = w.partition("=")
        out.append(n.KeyValue(key=k, value=v, span=span))
    return tuple(out)


def _raw_words(s: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes (raw values)."""
    out, cur, q = [], "", None
    i = 0
    while i < len(s):
        c = s[i]
        if q:
            cur += c
            if c == q:
                q = None
        elif c in "\"'":
            q = c
            cur += c
        elif c == "\\" and i + 1 < len(s):
            cur += c + s[i + 1]
            i += 1
        elif c.isspace():
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        out.append(cur)
    return out


def _command(rest: str) -> n.Command:
    s = rest.strip()
    if s.startswith("["):
        try:
            argv = json.loads(s)
            if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
                return n.Command(exec_form=True, argv=tuple(argv))
        except ValueError:
            pass
    return n.Command(exec_form=False, script=rest.strip())


def _instruction(line: int, end: int, body: str, path: str,
                 heredocs: tuple[n.Heredoc, ...]) -> n.Instruction:
    written, _, rest = body.strip().partition(" ")
    if "\t" in written:
        written, _, r2 = written.partition("\t")
        rest = r2 + " " + rest
    kw = written.upper()
    span = Span(path, line, 1, end, 1)
    flags: list[n.Flag] = []
    rest = rest.strip()
    if kw != "ONBUILD":
        while rest.startswith("--"):
            m = _FLAG.match(rest)
            if not m:
                break
            val = m.group(2)
            if val is not None and val.startswith('"'):
                val = val[1:-1]
            flags.append(n.Flag(name=m.group(1), value=val, span=span))
            rest = rest[m.end():].lstrip()
    base = dict(keyword=kw, written=written, span=span, original=body.strip(),
                flags=tuple(flags), heredocs=heredocs)
    if kw == "FROM":
        w = rest.split()
        image = w[0] if w else ""
        name = w[2] if len(w) >= 3 and w[1].lower() == "as" else None
        return n.From(**base, image=image, stage_name=name,
                      as_written=w[1] if len(w) >= 3 else None)
    if kw == "RUN":
        return n.Run(**base, command=_command(rest))
    if kw == "CMD":
        return n.Cmd(**base, command=_command(rest))
    if kw == "ENTRYPOINT":
        return n.Entrypoint(**base, command=_command(rest))
    if kw == "SHELL":
        try:
            argv = tuple(json.loads(rest))
        except ValueError:
            argv = tuple(rest.split())
        return n.Shell(**base, argv=argv)
    if kw in ("COPY", "ADD"):
        try:
            parts = json.loads(rest) if rest.startswith("[") else _words(rest)
        except ValueError:
            parts = _words(rest)
        parts = [p for p in parts]
        cls = n.Copy if kw == "COPY" else n.Add
        raw = _raw_words(rest) if not rest.startswith("[") else parts
        return cls(**base, sources=tuple(raw[:-1]), dest=raw[-1] if raw else "")
    if kw == "ENV":
        return n.Env(**base, pairs=_pairs(rest, span))
    if kw == "LABEL":
        return n.Label(**base, pairs=_pairs(rest, span))
    if kw == "ARG":
        decls = []
        for w in _raw_words(rest):
            k, eq, v = w.partition("=")
            decls.append(n.ArgDecl(name=k, default=v if eq else None, span=span))
        return n.Arg(**base, decls=tuple(decls))
    if kw == "EXPOSE":
        return n.Expose(**base, ports=tuple(rest.split()))
    if kw == "VOLUME":
        return n.Volume(**base, paths=tuple(rest.split()))
    if kw == "USER":
        return n.User(**base, user=rest.strip())
    if kw == "WORKDIR":
        return n.Workdir(**base, path=rest.strip())
    if kw == "STOPSIGNAL":
        return n.Stopsignal(**base, signal=rest.strip())
    if kw == "MAINTAINER":
        return n.Maintainer(**base, name=rest.strip())
    if kw == "HEALTHCHECK":
        if rest.upper().startswith("NONE"):
            return n.Healthcheck(**base, command=None)
        r = rest[3:].strip() if rest.upper().startswith("CMD") else rest
        return n.Healthcheck(**base, command=_command(r))
    if kw == "ONBUILD":
        inner = _instruction(line, end, rest, path, heredocs)
        return n.Onbuild(**base, inner=inner)
    raise DockerfileError.at("PB0001", f"unknown instruction: {written}", span)


_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def standin(text: str, path: str = "Dockerfile") -> n.Dockerfile:
    lines = text.split("\n")
    instrs: list[n.Instruction] = []
    comments: list[n.Comment] = []
    directives: list[n.Directive] = []
    i = 0
    in_header = True
    while i < len(lines):
        raw = lines[i]
        s = raw.strip()
        if not s:
            in_header = False
            i += 1
            continue
        if s.startswith("#"):
            m = re.match(r"#\s*([a-zA-Z]+)\s*=\s*(.*)$", s)
            if in_header and m and m.group(1).lower() in ("syntax", "escape", "check"):
                directives.append(n.Directive(name=m.group(1).lower(), value=m.group(2).strip(),
                                              span=Span(path, i + 1, 1, i + 1, len(raw) + 1)))
            else:
                in_header = False
                comments.append(n.Comment(text=s[1:], span=Span(path, i + 1, 1, i + 1,
                                                                len(raw) + 1)))
            i += 1
            continue
        in_header = False
        start = i
        body = ""
        while True:
            cur = lines[i]
            if cur.rstrip().endswith("\\"):
                body += cur.rstrip()[:-1]
                i += 1
                while i < len(lines) and (lines[i].strip().startswith("#")
                                          or not lines[i].strip()):
                    if not lines[i].strip() and i + 1 < len(lines):
                        pass
                    i += 1
                if i >= len(lines):
                    break
                continue
            body += cur
            i += 1
            break
        heredocs: list[n.Heredoc] = []
        kw = body.strip().split(" ", 1)[0].upper()
        if kw in ("RUN", "COPY", "ADD") or (kw == "ONBUILD"):
            for m in _HEREDOC.finditer(body):
                name = m.group(3)
                content = []
                while i < len(lines) and lines[i].strip() != name:
                    content.append(lines[i])
                    i += 1
                i += 1
                heredocs.append(n.Heredoc(name=name, content="\n".join(content) + "\n",
                                          expand=not m.group(2)))
        instrs.append(_instruction(start + 1, i, body, path, tuple(heredocs)))
    if not instrs:
        raise DockerfileError.at("PB0002", "file with no instructions", Span(path, 1, 1, 1, 1))
    return n.Dockerfile(path=path, instructions=tuple(instrs), directives=tuple(directives),
                        comments=tuple(comments), text=text)
