"""The warm-rebuild fast path of `pybuild [build] …`: when a build record says nothing the
build depends on changed (builder.buildrecord), tag and report the recorded image without
importing the parser, the planner, the executor or typer. Anything unusual — an option this
parser does not know, --no-cache, outputs, stdin, a stale record — falls through to the full
build, which gives the same answer the slow way."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# option → (destination, takes a value); only what the fast path can honour exactly
_OPTIONS = {
    "-f": ("file", True), "--file": ("file", True), "-t": ("tag", True), "--tag": ("tag", True),
    "--build-arg": ("build_arg", True), "--target": ("target", True),
    "--label": ("label", True), "--network": ("network", True),
    "--progress": ("progress", True), "-q": ("quiet", False), "--quiet": ("quiet", False),
    "--iidfile": ("iidfile", True), "--jobs": ("jobs", True), "-j": ("jobs", True),
    "--source-date-epoch": ("sde", True), "--pull": ("pull", True), "--root": ("root", True),
    "--compression": ("compression", True),
}
_MULTI = {"tag", "build_arg", "label"}
# The CLI's subcommands: `pybuild images` runs the command even when ./images is a directory
# (builder.cli.app._with_default_command); kept equal to the app by a test.
COMMANDS = frozenset({"build", "graph", "history", "images", "import", "info", "inspect",
                      "lint", "load", "parse", "prune", "rmi", "run", "save", "tag"})


def _parse(argv: list[str]) -> dict[str, object] | None:
    out: dict[str, object] = {k: [] for k in _MULTI}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            spec = _OPTIONS.get(name)
            if spec is None:
                return None
            dest, takes = spec
            if takes and not eq:
                i += 1
                if i >= len(argv):
                    return None
                value = argv[i]
            elif not takes:
                if eq:
                    return None
                value = "1"
            if dest in _MULTI:
                out[dest].append(value)  # type: ignore[attr-defined]
            else:
                out[dest] = value
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 1:
        return None
    out["context"] = positional[0]
    return out


def try_fast(argv: list[str]) -> int | None:
    """Answer a build from its record, or None to run the full CLI."""
    if os.environ.get("PYBUILD_NO_FASTPATH"):
        return None
    args = list(argv)
    root_opt: str | None = None
    while args and (args[0] == "--root" or args[0].startswith("--root=")):
        if args[0] == "--root":
            if len(args) < 2:
                return None
            root_opt, args = args[1], args[2:]
        else:
            root_opt, args = args[0].split("=", 1)[1], args[1:]
    if args and args[0] == "build":
        args = args[1:]
    elif not args or args[0] in COMMANDS or \
            not args[0].startswith("-") and not os.path.isdir(args[0]):
        return None
    opts = _parse(args)
    if opts is None or opts.get("file") == "-":
        return None
    if opts.get("pull", "missing") not in ("missing", "never", "false"):
        return None
    if opts.get("network", "default") not in ("default", "host", "none") or \
            opts.get("compression", "gzip") not in ("gzip", "zstd", "none"):
        return None
    if "jobs" in opts and not (str(opts["jobs"]).isdigit() and int(str(opts["jobs"])) >= 1):
        return None
    progress = "quiet" if opts.get("quiet") else str(opts.get("progress", "auto"))
    if progress not in ("auto", "plain", "tty", "quiet"):
        return None
    try:
        return _answer(opts, root_opt or opts.get("root"), progress)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any surprise: the full build path decides
        return None


def _answer(opts: dict[str, object], root: str | None, progress: str) -> int | None:
    from builder import buildrecord
    from builder.oci.reference import Transport, parse
    from builder.store import Store, atomic_write, resolve_root

    context = Path(str(opts["context"]))
    file = opts.get("file")
    df_path = Path(str(file)) if file else context / "Dockerfile"
    text = df_path.read_text(encoding="utf-8")
    build_args: list[tuple[str, str | None]] = []
    for v in opts["build_arg"]:  # type: ignore[attr-defined]
        k, sep, val = str(v).partition("=")
        if not k:
            return None
        build_args.append((k, val if sep else None))
    labels: list[tuple[str, str]] = []
    for v in opts["label"]:  # type: ignore[attr-defined]
        k, sep, val = str(v).partition("=")
        if not k or not sep:
            return None
        labels.append((k, val))
    sde_text = opts.get("sde") or os.environ.get("SOURCE_DATE_EPOCH") or None
    sde = int(str(sde_text)) if sde_text is not None else None
    names: list[str] = []
    for t in opts["tag"]:  # type: ignore[attr-defined]
        ref = parse(str(t))
        if ref.transport is not Transport.NAME:
            return None
        names.append(ref.name)
    store = Store(resolve_root(root))
    key = buildrecord.request_key(
        dockerfile_text=text.encode(), dockerfile_path=str(file) if file else None,
        context=context, build_args=build_args, environ=os.environ,
        target=str(opts["target"]) if opts.get("target") else None, labels=labels,
        source_date_epoch=sde, network=str(opts.get("network", "default")))
    with store.in_use():
        record = buildrecord.load(store, key)
        if record is None or not buildrecord.still_valid(store, record, context):
            return None
        from builder.digest import Digest

        for name in names:
            store.set_image(name, Digest.parse(record.manifest))
    if opts.get("iidfile"):
        atomic_write(Path(str(opts["iidfile"])), record.config.encode())
    if progress == "auto":
        progress = "tty" if sys.stderr.isatty() else "plain"
    if progress != "quiet":
        lines = []
        for n, name in enumerate(record.names, start=1):
            lines.append(f"#{n} {name}\n#{n} CACHED" if progress == "plain"
                         else f" => CACHED {name}")
        lines.append(f"=> writing image {record.config} done ({len(record.names)}/"
                     f"{len(record.names)} steps cached, build record)")
        lines += [f"=> naming to {name}" for name in names]
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stdout.write(record.config + "\n")
    return 0
