"""Reproducible builds: two checkouts at different times, two cold stores, SOURCE_DATE_EPOCH
→ the same manifest digest; base-image layers are never rewritten."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from builder.digest import Digest
from builder.oci.image import get_image
from tests.integration.build_helpers import busybox_store, export_layout, manifest_digest, run_build

DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest AS tools
RUN mkdir /tools && echo tool > /tools/t && date > /dev/null
FROM localhost/pybuild/busybox:latest
LABEL org.example=1
COPY app/ /app/
COPY --from=tools /tools /tools
RUN echo built > /app/stamp && touch /app/new
CMD ["cat", "/app/stamp"]
"""


def _checkout(dest: Path, mtime: int) -> Path:
    (dest / "app").mkdir(parents=True)
    (dest / "app" / "main.sh").write_text("echo main\n")
    (dest / "app" / "data.txt").write_text("data\n")
    (dest / "Dockerfile").write_text(DOCKERFILE)
    for p in [dest, *dest.rglob("*")]:
        os.utime(p, (mtime, mtime))
    return dest


def test_two_checkouts_two_stores_same_digest(tmp_path: Path) -> None:
    digests = []
    for n, mtime in ((1, 1_700_000_000), (2, 1_800_000_000)):
        work = tmp_path / f"w{n}"
        store = busybox_store(work)
        ctx = _checkout(work / "ctx", mtime)
        run = run_build(store, ctx, source_date_epoch=1_600_000_000)
        img = get_image(store, Digest.parse(run.result.manifest_digest))
        assert img.config.created == "2020-09-13T12:26:40Z"
        assert all(h.created == "2020-09-13T12:26:40Z" for h in img.config.history[1:])
        layout = export_layout(store, run.result, work / "layout")
        digests.append((run.result.manifest_digest, manifest_digest(layout)))
        shutil.rmtree(work / "store")
    assert digests[0] == digests[1]


def test_base_layers_are_not_rewritten(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = _checkout(tmp_path / "ctx", 1_700_000_000)
    run = run_build(store, ctx, source_date_epoch=0)
    base_digest = store.get_image("localhost/pybuild/busybox:latest")
    assert base_digest is not None
    base = get_image(store, base_digest)
    img = get_image(store, Digest.parse(run.result.manifest_digest))
    assert img.manifest.layers[0] == base.manifest.layers[0]
    assert img.config.history[0] == base.config.history[0]
