"""Image commands: images, inspect, history, tag, rmi, save, load, import, prune, pull, push."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from builder.digest import Digest
from builder.errors import ImageError, UsageError
from builder.oci.model import Compression, History, Platform
from builder.oci.reference import ImageRef, Transport, parse, parse_name
from builder.store import ENV_ROOT, Store, resolve_root

if TYPE_CHECKING:
    from types import ModuleType


def _oci_image() -> ModuleType:
    # Imported on use: image assembly pulls in the layer codecs (pyzstd, tar), which the
    # commands that do not touch images (lint, parse) should not pay for at start-up.
    from builder.oci import image

    return image


def _layout() -> ModuleType:
    from builder.oci import layout

    return layout

ImageArg = Annotated[str, typer.Argument(metavar="IMAGE")]
ROOT_HELP = (f"Store directory (default: ${ENV_ROOT}, else /var/lib/pybuild as root, else "
             "$XDG_DATA_HOME/pybuild).")


def open_store(ctx: typer.Context | None = None, root: str | None = None) -> Store:
    """The store for this invocation: the command's --root, else the global one."""
    if root is None and ctx is not None:
        top = ctx.find_root()
        if isinstance(top.obj, dict):
            root = top.obj.get("root")
    return Store(resolve_root(root))


def _resolve(store: Store, text: str) -> tuple[str | None, Digest]:
    """A stored image, or a file reference loaded into the store on the fly."""
    try:
        ref = parse(text)
    except ValueError:
        ref = None
    if ref is not None and ref.transport is not Transport.NAME:
        images = _layout().load(store, ref)
        return images[0].name, images[0].manifest.digest
    return _oci_image().lookup(store, text)


def _ago(created: str) -> str:
    if not created:
        return "N/A"
    try:
        t = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return created
    s = max(0, time.time() - t)
    for unit, n in (("years", 365 * 86400), ("months", 30 * 86400), ("weeks", 7 * 86400),
                    ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if s >= 2 * n:
            return f"{int(s // n)} {unit} ago"
    return "About a minute ago" if s >= 60 else "Less than a minute ago"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n = n / 1000  # type: ignore[assignment]
    return f"{n}"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _os_errors_as_image_errors(fn: Callable[..., None]) -> Callable[..., None]:
    """A file we were asked to read or write is missing or not writable: say so, plainly."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            raise ImageError(f"{where}{e.strerror or e}") from None

    return wrapper


def register(app: typer.Typer) -> None:
    """Add the image commands to the app."""
    command = app.command

    def cmd(name: str) -> Callable[[Callable[..., None]], Any]:
        return lambda fn: command(name)(_os_errors_as_image_errors(fn))

    @cmd("images")
    def images(ctx: typer.Context,
               quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only IDs.")] = False,
               as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
               ) -> None:
        """List images in the store."""
        store = open_store(ctx)
        rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
        for name, digest in store.images().items():
            try:
                img = _oci_image().get_image(store, digest)
            except ImageError:
                continue
            ref = parse_name(name)
            repo = ref.familiar.rsplit(":", 1)[0] if ref.tag else ref.familiar.split("@")[0]
            size = sum(layer.size for layer in img.manifest.layers)
            if quiet:
                typer.echo(img.id.short)
            elif as_json:
                typer.echo(json.dumps({"name": name, "repository": repo, "tag": ref.tag,
                                       "id": str(img.id), "digest": str(img.manifest_digest),
                                       "created": img.config.created, "size": size}))
            else:
                rows.append([repo, ref.tag or "<none>", img.id.short, _ago(img.config.created),
                             _size(size)])
        if not quiet and not as_json:
            _table(rows)

    @cmd("inspect")
    def inspect(ctx: typer.Context, image: ImageArg) -> None:
        """Show an image's manifest and config as JSON."""
        store = open_store(ctx)
        name, digest = _resolve(store, image)
        img = _oci_image().get_image(store, digest)
        tags = sorted(parse_name(n).familiar for n, d in store.images().items() if d == digest)
        out = {"Id": str(img.id), "RepoTags": tags, "Digest": str(img.manifest_digest),
               "Manifest": json.loads(img.manifest_bytes),
               "Config": json.loads(img.config_bytes)}
        typer.echo(json.dumps(out, indent=2, sort_keys=False))

    @cmd("history")
    def history(ctx: typer.Context, image: ImageArg,
                no_trunc: Annotated[bool, typer.Option("--no-trunc")] = False) -> None:
        """Show how each layer of an image was made."""
        store = open_store(ctx)
        _, digest = _resolve(store, image)
        img = _oci_image().get_image(store, digest)
        layers = list(img.manifest.layers)
        rows = [["CREATED", "CREATED BY", "SIZE", "COMMENT"]]
        entries = list(img.config.history)
        sized: list[tuple[int, History]] = []
        for h in entries:
            if h.empty_layer:
                sized.append((0, h))
            else:
                sized.append((layers.pop(0).size if layers else 0, h))
        for size, h in reversed(sized):
            by = h.created_by
            if not no_trunc and len(by) > 45:
                by = by[:44] + "…"
            rows.append([_ago(h.created), by, _size(size), h.comment])
        _table(rows)

    @cmd("tag")
    def tag(ctx: typer.Context, src: Annotated[str, typer.Argument(metavar="SOURCE")],
            dst: Annotated[str, typer.Argument(metavar="TARGET")]) -> None:
        """Give an image another name."""
        store = open_store(ctx)
        _, digest = _resolve(store, src)
        store.set_image(_oci_image().ref_for_store(dst).name, digest)

    @cmd("rmi")
    def rmi(ctx: typer.Context,
            images: Annotated[list[str], typer.Argument(metavar="IMAGE...")]) -> None:
        """Remove image names (their blobs go at the next `pybuild prune`)."""
        store = open_store(ctx)
        for text in images:
            # A name removes that name; an ID (or digest) removes every name of that image.
            try:
                ref = parse_name(text)
            except ValueError:
                ref = None
            if ref is not None and store.get_image(ref.name) is not None:
                names = [ref.name]
            else:
                _, digest = _oci_image().lookup(store, text)
                names = [n for n, d in store.images().items() if d == digest]
            for n in names:
                if store.remove_image(n):
                    typer.echo(f"Untagged: {parse_name(n).familiar}")

    @cmd("save")
    def save(ctx: typer.Context, image: ImageArg,
             output: Annotated[Path, typer.Option("-o", "--output", help="Archive to write.")],
             fmt: Annotated[str, typer.Option("--format", help="oci or docker.")] = "oci",
             compression: Annotated[str, typer.Option(
                 "--compression", help="Layer compression for oci: gzip, zstd, none.")] = "gzip",
             ) -> None:
        """Write an image to an OCI archive or a docker-archive."""
        if fmt not in ("oci", "docker"):
            raise UsageError(f"--format must be oci or docker, not {fmt!r}")
        try:
            comp = Compression(compression)
        except ValueError:
            raise UsageError(f"--compression must be gzip, zstd or none, not {compression!r}"
                             ) from None
        store = open_store(ctx)
        with store.in_use():
            name, digest = _resolve(store, image)
            prefix = "oci-archive:" if fmt == "oci" else "docker-archive:"
            _layout().export(store, digest, parse(f"{prefix}{output}"), name=name,
                          compression=comp)

    @cmd("load")
    def load(ctx: typer.Context,
             input_: Annotated[Path, typer.Option("-i", "--input",
                                                  help="OCI archive, docker-archive or OCI "
                                                       "layout directory.")],
             ) -> None:
        """Load images from an OCI archive, a docker-archive (detected) or an OCI layout dir."""
        store = open_store(ctx)
        with store.in_use():
            loaded = (_layout().load_layout(store, input_) if input_.is_dir()
                      else _layout().load_archive(store, input_))
            for img in loaded:
                if img.name:
                    store.set_image(img.name, img.manifest.digest)
                    typer.echo(f"Loaded image: {parse_name(img.name).familiar}")
                else:
                    img_id = _oci_image().get_image(store, img.manifest.digest).id
                    typer.echo(f"Loaded image ID: {img_id}")

    @cmd("import")
    def import_(ctx: typer.Context,
                rootfs: Annotated[Path, typer.Argument(
                    metavar="ROOTFS", help="A directory or a tar (gzip/zstd/plain).")],
                tag_: Annotated[str, typer.Option("-t", "--tag", help="Name for the image.")],
                message: Annotated[str, typer.Option("-m", "--message",
                                                     help="History comment.")] = "",
                ) -> None:
        """Make a one-layer image from a root filesystem (like `docker import`)."""
        store = open_store(ctx)
        ref = _oci_image().ref_for_store(tag_)
        sde_text = os.environ.get("SOURCE_DATE_EPOCH")
        try:
            sde = int(sde_text) if sde_text else None
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH must be an integer, not {sde_text!r}"
                             ) from None
        with store.in_use():
            desc = _oci_image().import_rootfs(store, rootfs, source_date_epoch=sde,
                                           comment=message)
            store.set_image(ref.name, desc.digest)
        typer.echo(str(_oci_image().get_image(store, desc.digest).id))

    @cmd("prune")
    def prune(ctx: typer.Context,
              cache: Annotated[bool, typer.Option(
                  "--cache", help="Also drop build cache records.")] = False) -> None:
        """Delete blobs and layers no image (or cache record) uses, and rootfs checkouts."""
        store = open_store(ctx)
        r = store.prune(cache=cache)
        typer.echo(f"Deleted {r.blobs} blobs ({_size(r.bytes)}), {r.layer_records} layer "
                   f"records, {r.rootfs} rootfs, {r.cache_records} cache records, {r.temp} "
                   "temp files")

    def _progress(text_event: object) -> None:
        from builder import events

        if isinstance(text_event, events.Message):
            typer.echo(text_event.text, err=True)

    @cmd("pull")
    def pull(ctx: typer.Context,
             image: Annotated[str, typer.Argument(metavar="NAME[:TAG|@DIGEST]")],
             platform: Annotated[str | None, typer.Option(
                 "--platform", metavar="OS/ARCH[/VARIANT]",
                 help="Which image of a multi-platform index (default: this machine's).")
             ] = None,
             quiet: Annotated[bool, typer.Option("-q", "--quiet",
                                                 help="No progress.")] = False,
             root: Annotated[str | None, typer.Option("--root", metavar="DIR",
                                                      help=ROOT_HELP)] = None,
             ) -> None:
        """Fetch an image from a registry into the store (every blob verified)."""
        from builder.registry.pull import pull as run_pull

        ref = _registry_ref(image)
        store = open_store(ctx, root)
        with store.in_use():
            digest = run_pull(store, ref, _platform(platform),
                              sink=_progress if not quiet else lambda _e: None)
        typer.echo(f"Digest: {digest}")
        typer.echo(ref.name)

    @cmd("push")
    def push(ctx: typer.Context,
             image: Annotated[str, typer.Argument(metavar="NAME",
                                                  help="A stored image (name or ID).")],
             dest: Annotated[str | None, typer.Argument(
                 metavar="[DEST]", help="Registry name to push to (default: NAME).")] = None,
             compression: Annotated[str, typer.Option(
                 "--compression", metavar="gzip|zstd|none",
                 help="Layer compression pushed (gzip reads everywhere).")] = "gzip",
             quiet: Annotated[bool, typer.Option("-q", "--quiet",
                                                 help="No progress.")] = False,
             root: Annotated[str | None, typer.Option("--root", metavar="DIR",
                                                      help=ROOT_HELP)] = None,
             ) -> None:
        """Upload a stored image to a registry (as `save` would write it)."""
        from builder.registry.push import push as run_push

        try:
            comp = Compression(compression)
        except ValueError:
            raise UsageError(f"--compression must be gzip, zstd or none, not {compression!r}"
                             ) from None
        store = open_store(ctx, root)
        with store.in_use():
            name, digest = _oci_image().lookup(store, image)
            target = dest or name or image
            ref = _registry_ref(target)
            desc = run_push(store, digest, ref, compression=comp,
                            sink=_progress if not quiet else lambda _e: None)
        typer.echo(f"Digest: {desc.digest}")
        typer.echo(ref.name)


def _registry_ref(text: str) -> ImageRef:
    try:
        ref = parse(text)
    except ValueError as e:
        raise UsageError(f"invalid image name {text!r}: {e}") from None
    if ref.transport is not Transport.NAME:
        raise UsageError(f"{text!r} is not a registry image name",
                         hint="for files use `pybuild load` / `pybuild save`")
    return ref


def _platform(text: str | None) -> Platform | None:
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--platform={text}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")
