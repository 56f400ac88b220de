"""Benchmark: layer writing (zstd, gzip, none) beside `tar --sort=name | zstd -3 -T0` and `| pigz`.

Usage: python3 benchmarks/layers.py [TREE] [--runs N]

TREE defaults to /var/tmp/bench-ctx/bigcontext (generated with
../shared/bench/cases/bigcontext/gen-context.sh when missing: ~200 MB, ~5,000 files).
Every variant runs N times (default 5) interleaved, output to /dev/null-like sinks (hashing
is part of pybuild's work: it computes diff_id and digest in the same pass). Prints medians
and pybuild/peer throughput ratios. Targets (issue 4): zstd ≥ 0.7x the zstd pipeline; gzip ≥
1.0x pigz.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.oci.layers import changes_from_tree, write_layer  # noqa: E402
from builder.oci.model import Compression  # noqa: E402

DEFAULT_TREE = Path("/var/tmp/bench-ctx/bigcontext")
GEN = Path(__file__).resolve().parents[2] / "shared/bench/cases/bigcontext/gen-context.sh"


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


def tree_size(root: Path) -> tuple[int, int]:
    files = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            files += 1
            total += os.lstat(os.path.join(dirpath, n)).st_size
    return files, total


def run_pybuild(root: Path, comp: Compression) -> tuple[float, float, int]:
    """(wall s, CPU s of all threads, output bytes)."""
    t, c = time.perf_counter(), time.process_time()
    res = write_layer(changes_from_tree(root), _Null(), comp, source_date_epoch=0)
    return time.perf_counter() - t, time.process_time() - c, res.size


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_pipeline(root: Path, compressor: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s of tar + compressor, output bytes)."""
    t, c = time.perf_counter(), _children_cpu()
    tar = subprocess.Popen(["tar", "--sort=name", "-C", str(root), "-cf", "-", "."],
                           stdout=subprocess.PIPE)
    comp = subprocess.Popen(compressor, stdin=tar.stdout, stdout=subprocess.PIPE)
    assert tar.stdout is not None and comp.stdout is not None
    tar.stdout.close()
    size = 0
    while block := comp.stdout.read(1 << 20):
        size += len(block)
    comp.wait()
    tar.wait()
    return time.perf_counter() - t, _children_cpu() - c, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree", nargs="?", type=Path, default=DEFAULT_TREE)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root: Path = args.tree
    if not root.is_dir():
        if root != DEFAULT_TREE or not GEN.exists():
            print(f"no tree at {root}", file=sys.stderr)
            return 2
        subprocess.run(["bash", str(GEN), str(root)], check=True)
    for tool in ("tar", "zstd", "pigz"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian package {tool})", file=sys.stderr)
            return 4
    files, total = tree_size(root)
    mb = total / 1e6
    print(f"tree: {root} — {files} files, {mb:.1f} MB; {args.runs} runs each, "
          f"{os.cpu_count()} CPUs")
    variants = {
        "pybuild zstd-3": lambda: run_pybuild(root, Compression.ZSTD),
        "tar | zstd -3 -T0": lambda: run_pipeline(root, ["zstd", "-3", "-T0", "-q", "-c"]),
        "pybuild gzip-6": lambda: run_pybuild(root, Compression.GZIP),
        "tar | pigz -6": lambda: run_pipeline(root, ["pigz", "-6", "-c"]),
        "pybuild none": lambda: run_pybuild(root, Compression.NONE),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    sizes: dict[str, int] = {}
    for _ in range(args.runs):
        for name, fn in variants.items():
            dt, cpu, size = fn()
            times[name].append(dt)
            cpus[name].append(cpu)
            sizes[name] = size
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    print(f"{'variant':<20} {'median s':>9} {'MB/s':>8} {'CPU s':>7} {'MB/CPU-s':>9} "
          f"{'output MB':>10}")
    for k in variants:
        print(f"{k:<20} {med[k]:>9.2f} {mb / med[k]:>8.1f} {cpu[k]:>7.2f} {mb / cpu[k]:>9.1f} "
              f"{sizes[k] / 1e6:>10.1f}")
    for ours, peer, target in (("pybuild zstd-3", "tar | zstd -3 -T0", 0.7),
                               ("pybuild gzip-6", "tar | pigz -6", 1.0)):
        print(f"{ours}: {med[peer] / med[ours]:.2f}x the throughput of `{peer}` "
              f"(target >= {target:.2f}); CPU efficiency {cpu[peer] / cpu[ours]:.2f}x")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} CPUs while measuring: "
              "wall-clock ratios are noisy; the CPU-time ratios are not")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
