"""Per-step sandbox overhead: `/bin/true` in pybuild's sandbox beside `runc run` of the same
busybox rootfs, in the same run. Prints medians and the ratio.

    python3 benchmarks/sandbox.py [--runs N]

Needs root (rung 1 of the ladder), busybox-static and runc. The rootfs is busybox-static plus
the empty /proc, /sys, /dev and /etc files real base images ship. Each pybuild step gets a
fresh overlay upper (as a RUN step does) and a private network namespace; runc gets the same
config.json (builder.sandbox.ociconfig) over a copy of the rootfs. Also prints the CPU time
(user + system, caller and children) per step, which is less sensitive to a busy machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.sandbox import SandboxSpec, detect, run  # noqa: E402
from tests.integration.sandbox_rootfs import make_rootfs, runc_run  # noqa: E402


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its reaped children so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:6.1f} ms  (min {min(samples) * 1000:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    report = detect()
    print(f"sandbox mode: {report.mode.value} / {report.filesystem.value}")
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-") as tmp:
        base = Path(tmp)
        rootfs = make_rootfs(base / "rootfs", image_like=True)
        for _ in range(5):  # warm up: page cache, detect() probe, imports
            _step(base, rootfs, "warm")
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        ours = []
        cpu0 = _cpu()
        for i in range(args.runs):
            ours.append(_step(base, rootfs, str(i)))
        our_cpu = (_cpu() - cpu0) / args.runs
        print(f"pybuild sandbox  /bin/true: {_ms(ours)}  cpu {our_cpu * 1000:5.1f} ms/step"
              f"  over {args.runs} runs")
        runc = shutil.which("runc")
        if runc is None:
            print("runc not installed: no comparison")
            return 0
        spec = SandboxSpec(lowers=(str(rootfs),), argv=("/bin/true",))
        bundle = base / "bundle"
        runc_run(spec, bundle, rootfs)  # warm up, copies the rootfs once
        theirs = []
        cpu0 = _cpu()
        for _ in range(max(10, args.runs // 4)):
            t = time.perf_counter()
            code, _, err = runc_run(spec, bundle, rootfs)
            theirs.append(time.perf_counter() - t)
            assert code == 0, err
        their_cpu = (_cpu() - cpu0) / len(theirs)
        print(f"runc run         /bin/true: {_ms(theirs)}  cpu {their_cpu * 1000:5.1f} ms/step"
              f"  over {len(theirs)} runs")
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"pybuild / runc = {ratio:.2f}x wall (median), {our_cpu / their_cpu:.2f}x cpu "
              "(target <= 0.5x and <= 15 ms per step)")
    return 0


def _step(base: Path, rootfs: Path, name: str) -> float:
    upper, work = base / f"u-{name}", base / f"w-{name}"
    upper.mkdir()
    work.mkdir()
    t = time.perf_counter()
    res = run(SandboxSpec(lowers=(str(rootfs),), upper=str(upper), work=str(work),
                          argv=("/bin/true",)))
    elapsed = time.perf_counter() - t
    assert res.exit_code == 0, res
    shutil.rmtree(upper)
    shutil.rmtree(work)
    return elapsed


if __name__ == "__main__":
    sys.exit(main())
