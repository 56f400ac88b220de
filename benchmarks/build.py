"""Build benchmark: the four cases of ../shared/bench/cases (multistage, bigcontext,
manylayers, debian) built by pybuild and by Buildah in the same run, interleaved per case:
cold (empty build cache, base images present), warm (nothing changed) and incremental (one
file changed, as ../shared/bench/peers.sh does). Prints medians and pybuild/Buildah ratios
beside the targets (warm <= 0.1, incremental <= 0.5, cold <= 0.7).

Run (as root, after `bash ../shared/bench/setup.sh`):

    python3 benchmarks/build.py [--runs N] [--cases multistage,...] [--tools pybuild,buildah]

Both builders use `--network none`, tag `localhost/bench-out/<case>:latest`, and the same
base images: Buildah from containers-storage (`localhost/bench/*`, made by setup.sh), pybuild
from its own store (`/var/tmp/bench-pybuild`, loaded from the OCI layouts setup.sh made, under
the same names). pybuild is started as `<this python> -m builder` (no pyenv shim), with its
modules byte-compiled first as `pip install` leaves them (PYTHONDONTWRITEBYTECODE in the
environment would otherwise make every run recompile the whole pipeline from source). "Cold" for
pybuild = `prune --cache` plus re-unpacking the base images' layers (Buildah keeps its base
images unpacked in containers-storage too); for Buildah it is peers.sh's cache reset.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH = next((p / "shared" / "bench" for p in ROOT.parents
              if (p / "shared" / "bench" / "cases").is_dir()), ROOT.parent / "shared" / "bench")
WORK = Path("/var/tmp/bench-work-pybuild")
STORE = Path("/var/tmp/bench-pybuild")
CTX_BIG = Path("/var/tmp/bench-ctx/bigcontext")
LAYOUTS = {"localhost/bench/busybox:latest": "/var/tmp/bench-images/busybox:latest",
           "localhost/bench/debian:bookworm": "/var/tmp/bench-images/debian:bookworm"}
CHANGE = {"multistage": "assets/site.conf", "bigcontext": "README.md",
          "manylayers": "files/06-routes.txt", "debian": "app/run.sh"}
TARGETS = {"cold": 0.7, "warm": 0.1, "incr": 0.5}


def sh(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def prepare_work(case: str) -> Path:
    dest = WORK / case
    shutil.rmtree(dest, ignore_errors=True)
    src = CTX_BIG if case == "bigcontext" else BENCH / "cases" / case
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return dest


def touch(path: Path) -> None:
    with open(path, "a") as f:
        f.write(f"# changed {time.time_ns()}\n")


# --- pybuild ---------------------------------------------------------------------------------
def pybuild_setup() -> None:
    from builder.oci import layout
    from builder.oci.reference import parse
    from builder.store import Store

    store = Store(STORE)
    for name, ref in LAYOUTS.items():
        loaded = layout.load(store, parse(f"oci-layout://{ref}"))
        store.set_image(parse(name).name, loaded[0].manifest.digest)


def pybuild_reset() -> None:
    """Empty build cache, base images present and unpacked (what Buildah's reset leaves):
    drop every cache/build record and every layer directory except the base images'."""
    from builder.executor.rootfs import layer_dir, layer_dir_key
    from builder.oci.image import get_image
    from builder.store import Store

    store = Store(STORE)
    for name in list(store.images()):
        if name.startswith("localhost/bench-out/"):
            store.remove_image(name)
    for record in store.cache_root.glob("*/*.json"):
        record.unlink()
    keep = set()
    for name in LAYOUTS:
        digest = store.get_image(parse_name(name))
        assert digest is not None, name
        for diff_id in get_image(store, digest).config.diff_ids:
            keep.add(layer_dir_key(diff_id))
            layer_dir(store, diff_id)
    for entry in os.scandir(store.rootfs_root):
        if entry.name not in keep:
            store.remove_rootfs(entry.name)
    os.sync()


def parse_name(name: str) -> str:
    from builder.oci.reference import parse

    return parse(name).name


def pybuild_cmd(case: str, ctx: Path) -> list[str]:
    return [sys.executable, "-m", "builder", "--root", str(STORE), "build", "--network", "none",
            "-q", "-t", f"localhost/bench-out/{case}:latest", str(ctx)]


# --- buildah ---------------------------------------------------------------------------------
def buildah_reset() -> None:
    sh(["bash", str(BENCH / "lib" / "cachectl.sh"), "reset"])


def buildah_cmd(case: str, ctx: Path) -> list[str]:
    return ["buildah", "build", "--runtime", "runc", "--layers", "--pull=never", "--network",
            "none", "-q", "-t", f"localhost/bench-out/{case}:latest", str(ctx)]


TOOLS = {"pybuild": (pybuild_reset, pybuild_cmd), "buildah": (buildah_reset, buildah_cmd)}


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = sh(cmd, check=False)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")
    return dt


def measure(tool: str, case: str, runs: int) -> dict[str, list[float]]:
    reset, cmd_of = TOOLS[tool]
    ctx = prepare_work(case)
    cmd = cmd_of(case, ctx)
    out: dict[str, list[float]] = {"cold": [], "warm": [], "incr": []}
    for _ in range(runs):
        reset()
        out["cold"].append(timed(cmd))
    timed(cmd)  # warm-up
    for _ in range(runs):
        out["warm"].append(timed(cmd))
    for _ in range(runs):
        touch(ctx / CHANGE[case])
        out["incr"].append(timed(cmd))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")))
    ap.add_argument("--cases", default="multistage,bigcontext,manylayers,debian")
    ap.add_argument("--tools", default="pybuild,buildah")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (both builders need it here)")
    if not (CTX_BIG.is_dir() and Path("/var/tmp/bench-images/busybox/index.json").is_file()):
        raise SystemExit(f"run `bash {BENCH}/setup.sh` first")
    tools = [t for t in args.tools.split(",") if t]
    if "buildah" in tools and shutil.which("buildah") is None:
        raise SystemExit("buildah missing: run setup.sh")
    WORK.mkdir(parents=True, exist_ok=True)
    if "pybuild" in tools:
        compileall.compile_dir(str(ROOT / "builder"), quiet=1)
        pybuild_setup()
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for case in args.cases.split(","):
        for tool in tools:
            print(f"[build bench] {case} / {tool} …", file=sys.stderr, flush=True)
            results[(case, tool)] = measure(tool, case, args.runs)
    print(f"\nmedian seconds over {args.runs} runs (warm page cache), "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    head = "| case | phase | " + " | ".join(tools) + (" | pybuild/buildah | target |"
                                                     if len(tools) == 2 else " |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for case in args.cases.split(","):
        for phase in ("cold", "warm", "incr"):
            meds = [statistics.median(results[(case, t)][phase]) for t in tools]
            row = f"| {case} | {phase} | " + " | ".join(f"{m:.2f}" for m in meds)
            if len(tools) == 2:
                ratio = meds[0] / meds[1] if meds[1] else float("nan")
                ok = "ok" if ratio <= TARGETS[phase] else "MISSED"
                row += f" | {ratio:.2f} | <= {TARGETS[phase]} {ok}"
            print(row + " |")
    if "pybuild" in tools:
        floor = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(11))
        print(f"\ninterpreter floor: `{sys.executable} -c pass` median {floor:.3f} s — no "
              "pybuild run can be faster (its share of a warm run is the rest)")


if __name__ == "__main__":
    main()
