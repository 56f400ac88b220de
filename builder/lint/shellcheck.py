"""`--shellcheck`: RUN scripts through the installed `shellcheck`, findings mapped back to
Dockerfile lines (the one place the linter starts a process).

Like hadolint: the script gets a `#!` line for the stage's SHELL (default /bin/sh; PowerShell
and cmd stages are skipped) and `export NAME=1` for every ARG/ENV name defined so far (so
SC2154 does not fire for build variables); SC2187 (ash) and SC1090 (source paths) are
excluded. A finding in a here-document body is reported on its own Dockerfile line. In a
regular RUN the shell sees the continuation lines joined into one; the finding's column is
mapped back through the joined pieces to the physical line it came from (hadolint reports
the instruction's first line instead).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from builder.errors import EnvironmentProblem, Severity
from builder.lint.context import Context, script_text
from builder.lint.finding import Finding
from builder.source import Span
from builder.syntax import nodes as n

_LEVEL = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO,
          "style": Severity.STYLE}
_DIALECTS = {"sh": "sh", "bash": "bash", "dash": "dash", "ash": "sh", "ksh": "ksh",
             "busybox": "busybox", "zsh": None}


def _jobs(ctx: Context) -> list[tuple[n.Run, str, str, int, bool]]:
    """(run, dialect, script with prelude, prelude line count, heredoc body?) per RUN."""
    jobs = []
    shell = "sh"
    names: list[str] = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                        "ftp_proxy", "NO_PROXY", "no_proxy"]
    for ins in ctx.df.instructions:
        if isinstance(ins, n.From):
            shell = "sh"
        elif isinstance(ins, n.Shell):
            shell = ins.argv[0].rsplit("/", 1)[-1] if ins.argv else "sh"
        elif isinstance(ins, n.Arg):
            names += [d.name for d in ins.decls]
        elif isinstance(ins, n.Env):
            names += [kv.key for kv in ins.pairs]
        elif isinstance(ins, n.Run) and not ins.command.exec_form:
            dialect = _DIALECTS.get(shell.removesuffix(".exe"), None)
            if dialect is None:
                continue
            body = script_text(ins)
            heredoc = bool(ins.heredocs) and body == ins.heredocs[0].content
            prelude = [f"#!/bin/{dialect}"] + [f"export {v}=1" for v in dict.fromkeys(names)]
            jobs.append((ins, dialect, "\n".join(prelude) + "\n" + body, len(prelude), heredoc))
    return jobs


def _check(exe: str, dialect: str, script: str) -> list[dict[str, object]]:
    proc = subprocess.run([exe, "-f", "json1", "-s", dialect, "-e", "2187,1090", "-"],
                          input=script, capture_output=True, text=True, timeout=120)
    try:
        return list(json.loads(proc.stdout or "{}").get("comments", []))
    except ValueError:
        return []


def run(ctx: Context) -> Iterator[Finding]:
    """Findings for every shell-form RUN. Raises EnvironmentProblem when shellcheck is absent."""
    exe = shutil.which("shellcheck")
    if exe is None:
        raise EnvironmentProblem("--shellcheck needs the `shellcheck` program",
                                 hint="install it (Debian: apt-get install shellcheck)")
    jobs = _jobs(ctx)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda j: _check(exe, j[1], j[2]), jobs))
    for (ins, _dialect, _script, skip, heredoc), comments in zip(jobs, results, strict=True):
        for c in comments:
            line = int(c.get("line", 1)) - skip  # type: ignore[call-overload]
            if line < 1:
                continue
            col = int(c.get("column", 1))  # type: ignore[call-overload]
            width = max(int(c.get("endColumn", col + 1)) - col, 1)  # type: ignore[call-overload]
            if heredoc:
                at = ins.span.line + line
            else:
                at, col = _physical_line(ctx, ins, line, col)
            code = f"SC{c.get('code')}"
            sev = ctx.config.override.get(code, _LEVEL.get(str(c.get("level")), Severity.INFO))
            span = Span(ins.span.file, at, col, at, col + width)
            yield Finding(code, sev, str(c.get("message", "")), span, ctx.line_text(at),
                          f"https://www.shellcheck.net/wiki/{code}")


def _physical_line(ctx: Context, ins: n.Run, line: int, column: int) -> tuple[int, int]:
    """The Dockerfile (line, column) a (line, column) of a joined RUN script comes from.

    BuildKit joins continuation lines by dropping the escape character (and blanks after it)
    at each line end, and skips comment and empty lines inside the instruction; the script
    is the joined text after `RUN` and its flags. Falls back to the first line."""
    if line != 1:
        return ins.span.line, 1
    escape = ctx.df.escape
    pieces: list[tuple[int, str]] = []
    for number in range(ins.span.line, ins.span.end_line + 1):
        text = ctx.line_text(number)
        if number > ins.span.line and (not text.strip() or text.lstrip().startswith("#")):
            continue
        stripped = text.rstrip(" \t")
        if stripped.endswith(escape) and number < ins.span.end_line:
            text = stripped[:-1]
        pieces.append((number, text))
    joined = "".join(t for _, t in pieces)
    script = ins.command.script
    start = joined.rfind(script) if script else -1
    if start < 0:
        return ins.span.line, 1
    offset = start + column - 1
    for number, text in pieces:
        if offset < len(text):
            return number, offset + 1
        offset -= len(text)
    return ins.span.end_line, 1
