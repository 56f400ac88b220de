"""The warm-rebuild fast path of `pybuild [build] …`: when nothing a finished build depended
on changed, tag and report its image without importing the parser, the planner, the executor
or typer. First the build stamps (builder.buildstamp: one lstat per path the build read, before
anything else of pybuild is imported), then the build record's content check
(builder.buildrecord: for a fresh checkout, whose files are new but equal). Anything unusual —
an option this parser does not know, --no-cache, outputs, stdin, a stale record — falls
through to the full build, which gives the same answer the slow way."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing, collections.abc and pathlib cost milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Sequence

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
                      "lint", "load", "parse", "prune", "pull", "push", "rmi", "run", "save",
                      "tag"})


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


def _answer(opts: dict[str, object], root_opt: str | None, progress: str) -> int | None:
    """Tier 1: the build stamps (builder.buildstamp) say nothing on disk changed. Tier 2: the
    build record's content check (builder.buildrecord) says nothing that matters changed —
    and stamps again, so the next rebuild takes tier 1."""
    from builder import buildstamp
    from builder.storeroot import resolve_root

    context = str(opts["context"])
    file = str(opts["file"]) if opts.get("file") else None
    with open(file or os.path.join(context, "Dockerfile"), encoding="utf-8") as f:
        text = f.read()  # as the full build reads it (universal newlines)
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
    key = buildstamp.request_key(
        dockerfile_text=text.encode(), dockerfile_path=file, context=context,
        build_args=build_args, environ=os.environ,
        target=str(opts["target"]) if opts.get("target") else None, labels=labels,
        source_date_epoch=int(str(sde_text)) if sde_text is not None else None,
        network=str(opts.get("network", "default")))
    root = resolve_root(root_opt)
    tags = [str(t) for t in opts["tag"]]  # type: ignore[attr-defined]
    answer = buildstamp.check(root, key, context)
    if answer is not None and not opts.get("iidfile"):
        known: dict[str, str] = answer["tags"]  # type: ignore[assignment]
        if all(t in known for t in tags):
            _report(answer["config"], answer["names"], answer["warnings"],  # type: ignore[arg-type]
                    [known[t] for t in tags], progress)
            return 0
    return _from_record(root, key, context, tags, opts, progress)


def _from_record(root: str, key: str, context_dir: str, tags: list[str],
                 opts: dict[str, object], progress: str) -> int | None:
    from pathlib import Path

    from builder import buildrecord, buildstamp
    from builder.digest import Digest
    from builder.oci.reference import Transport, parse
    from builder.store import Store, atomic_write

    names: dict[str, str] = {}
    for t in tags:
        ref = parse(t)
        if ref.transport is not Transport.NAME:
            return None
        names[t] = ref.name
    store = Store(root)
    context = Path(context_dir)
    with store.in_use():
        record = buildrecord.load(store, key)
        stamps: dict[str, buildstamp.Stamp | None] = {}
        if record is None or not buildrecord.still_valid(store, record, context, stamps):
            return None
        for name in dict.fromkeys(names.values()):
            store.set_image(name, Digest.parse(record.manifest))
        buildrecord.save_stamps(store, key, record, context, stamps, names)
    if opts.get("iidfile"):
        atomic_write(Path(str(opts["iidfile"])), record.config.encode())
    _report(record.config, record.names, record.warnings, list(names.values()), progress)
    return 0


def _report(config: str, steps: Sequence[str], warnings: Sequence[str], names: Sequence[str],
            progress: str) -> None:
    """What the full build prints when every step is cached: its warnings, each step as
    CACHED, the image ID on stdout."""
    if progress == "auto":
        progress = "tty" if sys.stderr.isatty() else "plain"
    if progress != "quiet":
        lines = list(warnings)
        for n, name in enumerate(steps, start=1):
            lines.append(f"#{n} {name}\n#{n} CACHED" if progress == "plain"
                         else f" => CACHED {name}")
        lines.append(f"=> writing image {config} done ({len(steps)}/{len(steps)} steps "
                     "cached, build record)")
        lines += [f"=> naming to {name}" for name in dict.fromkeys(names)]
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stdout.write(config + "\n")
