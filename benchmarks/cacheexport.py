"""Cache export/import benchmark: what `--cache-to` adds to a build, and what `--cache-from`
saves a brand-new runner. No peer: buildx (the tool with these flags) is not installed here
and Buildah's `--cache-to` only speaks registries.

Run (as root; RUN steps need the root sandbox):

    python3 benchmarks/cacheexport.py [--runs N] [--mb M]

Per run, in fresh temp stores holding a busybox base image (made from busybox-static): the
Dockerfile below (a builder stage writing M MiB of random data and sleeping 1 s, a final stage
copying it) is built

- cold, no flags (the baseline);
- cold with `--cache-to type=local,dest=DIR,mode=max` (export cost = difference);
- in another fresh store with `--cache-from type=local,src=DIR` (the CI hit), and the same
  again with `compression=gzip`;
- a second export of the unchanged cache to the same DIR (incremental: nothing rewritten).

Prints medians (seconds) and ratios to the cold build.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest AS builder
RUN dd if=/dev/urandom of=/blob bs=1M count={mb} 2>/dev/null && sleep 1
RUN echo done > /marker
FROM localhost/pybuild/busybox:latest
COPY app.txt /app.txt
COPY --from=builder /blob /blob
RUN wc -c /blob > /size.txt
"""


def _store(tmp: Path, name: str) -> object:
    from builder.oci.image import import_rootfs
    from builder.store import Store
    from tests.integration.sandbox_rootfs import make_rootfs

    store = Store(tmp / name)
    rootfs = make_rootfs(tmp / f"{name}-rootfs")
    desc = import_rootfs(store, rootfs, source_date_epoch=0)
    store.set_image("localhost/pybuild/busybox:latest", desc.digest)
    shutil.rmtree(rootfs)
    return store


def _build(store: object, ctx: Path, **kw: object) -> tuple[float, int]:
    from builder.api import BuildOptions, build

    t0 = time.perf_counter()
    res = build(store, BuildOptions(context=ctx, jobs=2, **kw))  # type: ignore[arg-type]
    return time.perf_counter() - t0, res.stats.cached


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=32)
    args = ap.parse_args()
    from builder.cache import parse_cache_spec

    rows: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-cache-", dir="/var/tmp") as d:
            tmp = Path(d)
            ctx = tmp / "ctx"
            ctx.mkdir()
            (ctx / "app.txt").write_text("app\n")
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(mb=args.mb))
            cache, gz = tmp / "cache", tmp / "cache-gz"
            runs = {
                "cold": (_store(tmp, "a"), {}),
                "cold + --cache-to (zstd)": (_store(tmp, "b"), {"cache_to": (
                    parse_cache_spec(f"type=local,dest={cache},mode=max", "to"),)}),
            }
            for label, (store, kw) in runs.items():
                rows.setdefault(label, []).append(_build(store, ctx, **kw)[0])
            # the gzip export is measured on its own store (recompression included)
            t, _ = _build(_store(tmp, "g"), ctx, cache_to=(
                parse_cache_spec(f"type=local,dest={gz},mode=max,compression=gzip", "to"),))
            rows.setdefault("cold + --cache-to (gzip)", []).append(t)
            t, cached = _build(_store(tmp, "c"), ctx, cache_from=(
                parse_cache_spec(f"type=local,src={cache}", "from"),))
            assert cached == 5, cached
            rows.setdefault("fresh store + --cache-from (zstd)", []).append(t)
            t, cached = _build(_store(tmp, "e"), ctx, cache_from=(
                parse_cache_spec(f"type=local,src={gz}", "from"),))
            assert cached == 5, cached
            rows.setdefault("fresh store + --cache-from (gzip)", []).append(t)
            store_b = runs["cold + --cache-to (zstd)"][0]
            t, _ = _build(store_b, ctx, cache_to=(
                parse_cache_spec(f"type=local,dest={cache},mode=max", "to"),))
            rows.setdefault("warm + --cache-to again (incremental)", []).append(t)
            t, _ = _build(store_b, ctx)
            rows.setdefault("warm, no flags", []).append(t)
    cold = statistics.median(rows["cold"])
    print(f"cache export/import, {args.mb} MiB layer, median of {args.runs} runs")
    for label, values in rows.items():
        med = statistics.median(values)
        print(f"  {label:42s} {med:7.3f} s   {med / cold:5.2f} x cold")


if __name__ == "__main__":
    main()
