"""Dockerfile text → typed AST (builder.syntax.nodes). The only package that imports lark.

Entry points: `parse(text, path)` and `parse_file(path)`; both return a
`nodes.Dockerfile` or raise `builder.errors.DockerfileError` — never another exception.
Pipeline: prepass.Scanner (lines, directives, continuations, heredoc bodies) → grammar
(dockerfile.lark, one logical line at a time) → arguments (BuildKit's line parsers) →
parser.build_node (typed nodes) → checks (strict instruction rules). Successful parses are
remembered by builder.syntax.parsecache, so an unchanged Dockerfile is not parsed again.
"""

from __future__ import annotations

import sys

from builder.errors import DockerfileError
from builder.source import Span
from builder.syntax import nodes

__all__ = ["parse", "parse_file"]


def parse(text: str, path: str = "Dockerfile", *, strict: bool = True) -> nodes.Dockerfile:
    """Parse Dockerfile `text` (named `path` in diagnostics) into the typed AST.

    strict=True (the default) also applies BuildKit's instruction rules (unknown
    instructions and flags, argument counts, stage names, …); strict=False accepts
    everything BuildKit's *parser* accepts, as `pybuild parse` and the parser conformance
    tests need. Raises DockerfileError (exit code 3) for invalid input, nothing else.
    """
    from builder.syntax import parsecache

    cached = parsecache.load(text, path, strict)
    if isinstance(cached, nodes.Dockerfile):
        return cached
    from builder.syntax import parser

    try:
        tree = parser.parse(text, path, strict=strict)
        parsecache.store(text, path, strict, tree)
        return tree
    except DockerfileError:
        raise
    except RecursionError:
        raise DockerfileError.at("PB1099", "instruction nesting is too deep",
                                 Span.point(path, 1)) from None


def parse_file(path: str, *, strict: bool = True) -> nodes.Dockerfile:
    """Read and parse the Dockerfile at `path` ("-" = standard input).

    Bytes that are not UTF-8 are kept as lone surrogates (surrogateescape), so nothing is
    lost; a missing or unreadable file is a DockerfileError naming the path."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise DockerfileError(f"cannot read Dockerfile {path}: {exc.strerror or exc}",
                              hint="pass the Dockerfile with -f PATH (or - for stdin)") from None
    return parse(data.decode("utf-8", "surrogateescape"), path, strict=strict)
