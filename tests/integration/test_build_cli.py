"""`pybuild -f Dockerfile .` end to end through the real CLI: outputs, metadata, failures,
and images accepted by skopeo and run by podman."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_pybuild
from tests.integration.build_helpers import busybox_store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = busybox_store(tmp_path)
    return store.root


def test_example_builds_with_outputs_and_metadata(root: Path, tmp_path: Path) -> None:
    meta, iid, archive = tmp_path / "meta.json", tmp_path / "iid", tmp_path / "img.tar"
    proc = run_pybuild("--root", str(root), "-f", str(FIXTURES / "example" / "Dockerfile"),
                       "-t", "example:1", "--progress=plain", "--metadata-file", str(meta),
                       "--iidfile", str(iid), "-o", f"type=oci,dest={archive}",
                       str(FIXTURES / "example"))
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.strip().splitlines()[-1]
    assert iid.read_text() == image_id
    data = json.loads(meta.read_text())
    assert data["containerimage.config.digest"] == image_id
    assert data["containerimage.digest"].startswith("sha256:")
    assert data["image.name"] == "docker.io/library/example:1"
    assert "RUN echo \"hello from pybuild\" > greeting.txt" in proc.stderr
    assert " DONE " in proc.stderr
    again = run_pybuild("--root", str(root), "build", "-f",
                        str(FIXTURES / "example" / "Dockerfile"), "--progress=plain",
                        str(FIXTURES / "example"))
    assert again.returncode == 0 and again.stderr.count("CACHED") == 5
    assert again.stdout.strip() == image_id
    if shutil.which("skopeo"):
        out = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}"], check=True,
                             capture_output=True, text=True).stdout
        assert json.loads(out)["Digest"] == data["containerimage.digest"]
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman not installed: cannot run the image")
    import tempfile

    # podman refuses a runroot path longer than 50 characters: a short temp dir. --tmpdir
    # too: podman's default (/run/libpod) is shared with every podman on the machine, and
    # `system reset` below would empty it under them.
    with tempfile.TemporaryDirectory(prefix="pbpod-") as short:
        base = [podman, "--root", f"{short}/root", "--runroot", f"{short}/run",
                "--tmpdir", f"{short}/tmp"]
        cmd = [*base, "--runtime", "runc", "run", "--rm", "--network", "none",
               "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
               f"oci-archive:{archive}"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        subprocess.run([*base, "system", "reset", "-f"], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["hello from pybuild", "built on Linux"]


def test_failing_step_reports_span_exit_code_and_output(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "RUN echo fine\n"
                                    "RUN echo 'something broke' >&2; exit 3\n")
    for progress in ("plain", "quiet"):
        proc = run_pybuild("--root", str(root), "-t", "broken:1", f"--progress={progress}",
                           str(ctx))
        assert proc.returncode == 1
        assert "Dockerfile:3:1" in proc.stderr
        assert "exit code: 3" in proc.stderr
        assert "something broke" in proc.stderr
    images = run_pybuild("--root", str(root), "images")
    assert "broken" not in images.stdout
    # no staging, upper or work directory left behind, and no overlay still mounted
    assert list((root / "tmp").iterdir()) == []
    assert str(root) not in Path("/proc/self/mounts").read_text()


def test_docker_archive_and_local_outputs(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "RUN echo hi > /hi\n")
    out = tmp_path / "fs"
    dock = tmp_path / "docker.tar"
    proc = run_pybuild("--root", str(root), "-q", "-t", "x/y:z", "-o",
                       f"type=local,dest={out}", "--output", f"type=docker,dest={dock}",
                       "--compression", "zstd", str(ctx))
    assert proc.returncode == 0, proc.stderr
    assert (out / "hi").read_text() == "hi\n" and (out / "bin" / "busybox").exists()
    import tarfile

    with tarfile.open(dock) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["x/y:z"]


def test_usage_errors_exit_2(root: Path, tmp_path: Path) -> None:
    proc = run_pybuild("--root", str(root), "--progress=fancy", str(tmp_path))
    assert proc.returncode == 2
    proc = run_pybuild("--root", str(root), "-o", "type=registry,dest=x", str(tmp_path))
    assert proc.returncode == 2


def test_run_the_built_image(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "ENV WHO=world\nWORKDIR /srv\n"
                                    'CMD ["sh", "-c", "echo hello $WHO from $(pwd)"]\n')
    assert run_pybuild("--root", str(root), "-q", "-t", "hello:1", str(ctx)).returncode == 0
    proc = run_pybuild("--root", str(root), "run", "hello:1")
    assert proc.returncode == 0 and proc.stdout == "hello world from /srv\n"
    proc = run_pybuild("--root", str(root), "run", "-e", "WHO=you", "hello:1", "sh", "-c",
                       "echo $WHO; exit 4")
    assert proc.returncode == 4 and proc.stdout == "you\n"


def test_warm_rebuild_fast_path_and_its_invalidation(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "COPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n")
    args = ("--root", str(root), "build", "--progress=plain", "-t", "fast:1", str(ctx))
    first = run_pybuild(*args)
    assert first.returncode == 0, first.stderr
    image_id = first.stdout.strip()
    warm = run_pybuild(*args)
    assert warm.returncode == 0 and "build record" in warm.stderr
    assert warm.stdout.strip() == image_id
    (ctx / "a.txt").touch()  # mtime only: still answered from the record
    assert "build record" in run_pybuild(*args).stderr
    (ctx / "a.txt").write_text("changed\n")
    changed = run_pybuild(*args)
    assert changed.returncode == 0 and "build record" not in changed.stderr
    assert "COPY a.txt /a.txt\n#" in changed.stderr and changed.stdout.strip() != image_id
    # a re-tagged base image invalidates the record too
    store_base = run_pybuild("--root", str(root), "tag", "fast:1",
                             "localhost/pybuild/busybox:latest")
    assert store_base.returncode == 0, store_base.stderr
    again = run_pybuild(*args)
    assert again.returncode == 0 and "build record" not in again.stderr


def test_no_sandbox_refuses_run_with_exit_4_but_copy_only_builds(root: Path,
                                                                   tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("f\n")
    env = {"PYBUILD_SANDBOX_MODE": "none", "PYBUILD_NO_FASTPATH": "1"}
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\nRUN true\n")
    proc = run_pybuild("--root", str(root), "-q", str(ctx), env=env)
    assert proc.returncode == 4 and "RUN needs a sandbox" in proc.stderr
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "COPY f.txt /f.txt\nWORKDIR /w\n")
    proc = run_pybuild("--root", str(root), "-q", str(ctx), env=env)
    assert proc.returncode == 0, proc.stderr


def test_network_change_reruns_run_steps_and_skips_the_build_record(root: Path,
                                                                   tmp_path: Path) -> None:
    """`--network` changes what a RUN sees: a build under `none` must neither be answered by
    the record nor reuse the RUN cached under `host` (and `default` is `host`)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "RUN ls /sys/class/net > /nets\n")
    base = ("--root", str(root), "build", "--progress=plain")
    first = run_pybuild(*base, "--network=host", str(ctx))
    assert first.returncode == 0, first.stderr
    default = run_pybuild(*base, "--network=default", str(ctx))
    assert default.returncode == 0 and "build record" in default.stderr
    none = run_pybuild(*base, "--network=none", str(ctx))
    assert none.returncode == 0, none.stderr
    assert "build record" not in none.stderr
    run_line = next(ln for ln in none.stderr.splitlines() if "RUN ls" in ln)
    vertex = run_line.split()[0]
    assert f"{vertex} CACHED" not in none.stderr
    slow = run_pybuild(*base, "--network=none", str(ctx), env={"PYBUILD_NO_FASTPATH": "1"})
    assert slow.returncode == 0 and slow.stdout.strip() == none.stdout.strip()


def test_cache_export_and_import_through_the_cli(root: Path, tmp_path: Path) -> None:
    """`pybuild build --cache-to` on one store, `--cache-from` on a brand-new one: all cached,
    same image ID; unsupported cache types are usage errors (exit 2)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM localhost/pybuild/busybox:latest\n"
                                    "RUN echo hi > /hi\n")
    cache = tmp_path / "cache"
    first = run_pybuild("--root", str(root), "build", "--progress=plain", "--cache-to",
                        f"type=local,dest={cache},mode=max", str(ctx))
    assert first.returncode == 0, first.stderr
    assert f"exporting cache to type=local,dest={cache}" in first.stderr
    other = busybox_store(tmp_path / "other").root
    second = run_pybuild("--root", str(other), "build", "--progress=plain", "--cache-from",
                         f"type=local,src={cache}", str(ctx))
    assert second.returncode == 0, second.stderr
    assert "CACHED" in second.stderr and "RUN echo hi" in second.stderr
    assert second.stdout.strip() == first.stdout.strip()
    bad = run_pybuild("--root", str(other), "build", "--cache-to",
                      "type=registry,ref=example.com/app:cache", str(ctx))
    assert bad.returncode == 2
    assert "type=registry is not supported yet" in bad.stderr and "type=local" in bad.stderr
