"""`pybuild run`: start a stored image's command in the sandbox and wait for it (a minimal
runner: foreground only, changes discarded, like `docker run --rm`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from builder.errors import UsageError
from builder.executor.rootfs import empty_dir, stack_dirs
from builder.oci import image as oci_image
from builder.oci import layout
from builder.oci.reference import Transport, parse
from builder.run.spec import container_spec
from builder.sandbox import run as sandbox_run
from builder.sandbox.spec import Network
from builder.store import Store


def run_image(store: Store, image: str, args: Sequence[str] = (), *,
              entrypoint: Sequence[str] | None = None, env: Sequence[str] = (),
              user: str | None = None, workdir: str | None = None,
              network: Network = "none", interactive: bool = False) -> int:
    """Run `image` (a store name/ID or a file reference) and return its exit status (128+N
    when killed by signal N). Output goes to the caller's stdout/stderr."""
    try:
        ref = parse(image)
    except ValueError:
        ref = None
    if ref is not None and ref.transport is not Transport.NAME:
        digest = layout.load(store, ref)[0].manifest.digest
    else:
        _, digest = oci_image.lookup(store, image)
    img = oci_image.record_layers(store, digest)
    with store.in_use():
        lowers = [str(d) for d in stack_dirs(store, img.config.diff_ids)] or \
            [str(empty_dir(store))]
        upper = Path(tempfile.mkdtemp(prefix="run-upper-", dir=store.tmp_root))
        work = Path(tempfile.mkdtemp(prefix="run-work-", dir=store.tmp_root))
        try:
            try:
                spec = container_spec(img.config.config, lowers, upper=str(upper),
                                      work=str(work), args=args, entrypoint=entrypoint,
                                      env=env, user=user, workdir=workdir, network=network)
            except ValueError as e:
                raise UsageError(f"{image}: {e}", hint="pass a command after the image") \
                    from None
            result = sandbox_run(spec, stdin=0 if interactive else None)
            if result.error:
                import sys

                sys.stderr.write(f"pybuild run: {result.error}\n")
            return result.exit_code
        finally:
            shutil.rmtree(upper, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
