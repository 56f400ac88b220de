"""Registry benchmark: pull and push of a real image (Debian bookworm, one ~49 MB gzip layer)
through a local `docker-registry` on 127.0.0.1, pybuild beside skopeo, interleaved per run.

- pull: `pybuild pull` into an empty store vs `skopeo copy docker://… oci:DIR` (pybuild also
  decompresses each layer once to check its diff_id and record it — work skopeo does not do);
- push: `pybuild push` to a new repository vs `skopeo copy oci:LAYOUT docker://…`; both
  mount the blobs from the repository they were first pushed to (skopeo knows it from its
  blob-info cache, pybuild from the stored image's name), so this measures the round trips.

Prints medians (seconds) and pybuild/skopeo ratios. Needs /var/tmp/bench-images/debian (made
by ../shared/bench/setup.sh), docker-registry and skopeo.

    python3 benchmarks/registry.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAYOUT = Path("/var/tmp/bench-images/debian")


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not LAYOUT.is_dir():
        sys.exit(f"{LAYOUT} is missing: run ../shared/bench/setup.sh first")
    from tests.integration.registry_fixture import running_registry

    pb = [sys.executable, "-m", "builder"]
    sk = ["skopeo", "--insecure-policy"]
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp_s:
        tmp = Path(tmp_s)
        with running_registry(tmp / "registry") as reg:
            src = f"{reg.host}/bench/debian:bookworm"
            subprocess.run([*sk, "copy", "--dest-tls-verify=false", f"oci:{LAYOUT}:bookworm",
                            f"docker://{src}"], check=True, capture_output=True)
            store = tmp / "store"
            subprocess.run([*pb, "--root", str(store), "pull", "-q", src], check=True,
                           capture_output=True)
            results: dict[str, list[float]] = {k: [] for k in
                                               ("pull pybuild", "pull skopeo",
                                                "push pybuild", "push skopeo", "floor")}
            for i in range(args.runs):
                results["floor"].append(timed([*pb, "--version"]))
                fresh = tmp / f"pull-{i}"
                results["pull pybuild"].append(timed([*pb, "--root", str(fresh), "pull", "-q",
                                                      src]))
                shutil.rmtree(fresh)
                results["pull skopeo"].append(timed([*sk, "copy", "--src-tls-verify=false",
                                                     f"docker://{src}", f"oci:{fresh}:x"]))
                shutil.rmtree(fresh)
                results["push pybuild"].append(timed([*pb, "--root", str(store), "push", "-q",
                                                      src, f"{reg.host}/pb{i}/debian:1"]))
                results["push skopeo"].append(timed([*sk, "copy", "--dest-tls-verify=false",
                                                     f"oci:{LAYOUT}:bookworm",
                                                     f"docker://{reg.host}/sk{i}/debian:1"]))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"registry benchmark: debian:bookworm (49 MB gzip layer), {args.runs} runs, medians")
    print(f"  interpreter floor (pybuild --version): {med['floor']:.2f}s")
    for op in ("pull", "push"):
        a, b = med[f"{op} pybuild"], med[f"{op} skopeo"]
        print(f"  {op}: pybuild {a:.2f}s  skopeo {b:.2f}s  ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
