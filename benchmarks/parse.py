"""Parse throughput on the real-world Dockerfile corpus: in one process, and per invocation
of `python3 -m builder parse` (interpreter start included), beside hadolint as the peer.

Run: python3 benchmarks/parse.py [--rounds N] [--invocations N]
Prints medians. Reads ../shared/conformance/realworld in place (skips when absent).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus() -> list[Path]:
    for base in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        rw = base / "conformance" / "realworld"
        if rw.is_dir():
            return sorted(p for p in rw.rglob("*")
                          if p.is_file() and p.suffix not in (".jsonl", ".tsv"))
    return []


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--invocations", type=int, default=9)
    opts = ap.parse_args()
    files = corpus()
    if not files:
        print("conformance corpus not found; nothing to measure")
        return 0
    texts = [(str(p), p.read_bytes().decode("utf-8", "surrogateescape")) for p in files]
    lines = sum(t.count("\n") for _, t in texts)

    t0 = time.perf_counter()
    from builder.syntax import parse
    from builder.syntax.grammar import parser
    parser()
    startup = time.perf_counter() - t0

    def parse_all(strict: bool = True) -> None:
        for path, text in texts:
            parse(text, path, strict=strict)

    one = median_time(parse_all, opts.rounds)
    cpu = []
    for _ in range(opts.rounds):  # CPU time: less sensitive to other load on the machine
        t = time.process_time()
        parse_all()
        cpu.append(time.process_time() - t)
    print(f"corpus: {len(files)} files, {lines} lines; load average {os.getloadavg()[0]:.1f}")
    print(f"import + grammar build (first process use): {startup * 1000:.1f} ms")
    print(f"in one process, whole corpus (median of {opts.rounds}): {one * 1000:.1f} ms "
          f"= {lines / one:,.0f} lines/s, {one / len(files) * 1000:.2f} ms/file; "
          f"CPU {statistics.median(cpu) * 1000:.1f} ms")

    sample = [files[i] for i in range(0, len(files), max(1, len(files) // opts.invocations))]
    sample = sample[: opts.invocations]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    cpu_of: dict[str, float] = {}

    def run(cmd: list[str]) -> float:
        """Median wall time per invocation; the median CPU time (user + system of the child,
        steadier when other work shares the machine) goes to cpu_of."""
        times, cpus = [], []
        for path in sample:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([c if c != "{}" else str(path) for c in cmd],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
            times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        cpu_of[" ".join(cmd[:3])] = statistics.median(cpus)
        return statistics.median(times)

    def cpu(cmd: list[str]) -> str:
        return f"(CPU {cpu_of[' '.join(cmd[:3])] * 1000:.0f} ms)"

    bare_cmd = [sys.executable, "-c", "pass", "{}"]
    api_cmd = [sys.executable, "-c",
               "import sys; from builder.syntax import parse_file; parse_file(sys.argv[1])",
               "{}"]
    cli_cmd = [sys.executable, "-m", "builder", "parse", "-f", "{}"]
    bare, api, ours = run(bare_cmd), run(api_cmd), run(cli_cmd)
    print(f"per invocation (median of {len(sample)} files):")
    print(f"  python3 -c pass (interpreter start):   {bare * 1000:7.1f} ms {cpu(bare_cmd)}")
    print(f"  parse_file(FILE) via python3 -c:       {api * 1000:7.1f} ms {cpu(api_cmd)}"
          "  parser alone")
    print(f"  python3 -m builder parse -f FILE:      {ours * 1000:7.1f} ms {cpu(cli_cmd)}"
          "  + the typer app")
    hadolint = shutil.which("hadolint")
    if hadolint:
        peer_cmd = [hadolint, "--no-fail", "{}"]
        peer = run(peer_cmd)
        print(f"  hadolint FILE (parse + lint, peer):    {peer * 1000:7.1f} ms {cpu(peer_cmd)}")
        print(f"  ratio pybuild parse / hadolint (wall): {ours / peer:7.2f}x")
    else:
        print("  hadolint not installed: no peer ratio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
