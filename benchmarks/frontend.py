"""Front-end speed: shell-word expansion, .dockerignore matching and planning the real-world
corpus (parse excluded), in one process.

Run: python3 benchmarks/frontend.py [--rounds N]
Prints medians of CPU time (and wall time) and the load average. No peer tool runs here:
BuildKit's planner (dockerfile2llb) only runs inside a BuildKit daemon, which this machine
does not have.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.frontend import PlanOptions, plan  # noqa: E402
from builder.frontend.expand import ExpansionError, expand  # noqa: E402
from builder.patternmatcher import PatternMatcher  # noqa: E402
from builder.syntax import parse  # noqa: E402


def shared() -> Path | None:
    for base in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (base / "conformance").is_dir():
            return base / "conformance"
    return None


def median_time(fn, rounds: int) -> float:
    """Median CPU time of this process over `rounds` runs (CPU rather than wall time, so other
    work on a shared machine disturbs the figure less; the wall median is printed too)."""
    cpu, wall = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    median_time.last_wall = statistics.median(wall)  # type: ignore[attr-defined]
    return statistics.median(cpu)


def wall() -> str:
    return f"[wall {median_time.last_wall * 1e3:.1f} ms]"  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    conf = shared()
    if conf is None:
        print("conformance corpus not found; nothing to measure")
        return

    words = []
    for line in (conf / "buildkit/shell/envVarTest").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            words.append(line.split("|")[1].strip())
    env = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}

    def expand_all() -> None:
        for w in words:
            try:
                expand(w, env)
            except ExpansionError:
                pass

    t = median_time(expand_all, args.rounds)
    print(f"expand: {len(words)} envVarTest words in {t * 1e3:.2f} ms CPU "
          f"({t / len(words) * 1e6:.1f} µs/word) {wall()}")

    pm = PatternMatcher(["**/*.log", "!keep.log", "node_modules", "build/**", ".git", "*.tmp"])
    paths = [f"src/pkg{i}/mod{j}/file{k}.{ext}" for i in range(10) for j in range(10)
             for k in range(5) for ext in ("go", "log")]

    def match_all() -> None:
        for p in paths:
            pm.matches_or_parent_matches(p)

    t = median_time(match_all, args.rounds)
    print(f"dockerignore: {len(paths)} paths x 6 patterns in {t * 1e3:.1f} ms CPU "
          f"({t / len(paths) * 1e6:.1f} µs/path) {wall()}")

    rows = (conf / "realworld/sources.tsv").read_text().splitlines()[1:]
    files = [conf / r.split("\t")[0] for r in rows if (conf / r.split("\t")[0]).is_file()]
    parsed = [parse(f.read_text(encoding="utf-8", errors="surrogateescape"), str(f))
              for f in files]
    instructions = sum(len(d.instructions) for d in parsed)

    def plan_all() -> None:
        for d in parsed:
            plan(d, PlanOptions())

    t = median_time(plan_all, args.rounds)
    print(f"plan: {len(parsed)} real-world Dockerfiles ({instructions} instructions) in "
          f"{t * 1e3:.1f} ms CPU ({t / len(parsed) * 1e3:.2f} ms/file, "
          f"{t / instructions * 1e6:.0f} µs/instruction) {wall()}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
