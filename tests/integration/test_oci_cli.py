"""The image commands end to end through the real CLI (`python -m builder`)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run_pybuild
from tests.integration.oci_fixtures import busybox_rootfs, need

pytestmark = pytest.mark.integration


def pb(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = run_pybuild("--root", str(root), *args, env={"SOURCE_DATE_EPOCH": "1700000000"})
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def test_image_commands_round_trip(tmp_path: Path):
    store = tmp_path / "store"
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    image_id = pb(store, "import", str(rootfs), "-t", "bb").stdout.strip()
    assert image_id.startswith("sha256:")
    # importing the same tree again gives the same image (deterministic with SOURCE_DATE_EPOCH)
    assert pb(store, "import", str(rootfs), "-t", "bb2").stdout.strip() == image_id
    listing = pb(store, "images").stdout
    assert "bb " in listing and image_id[7:19] in listing
    pb(store, "tag", "bb", "example.com/team/bb:1")
    info = json.loads(pb(store, "inspect", "example.com/team/bb:1").stdout)
    assert info["Id"] == image_id
    assert sorted(info["RepoTags"]) == ["bb2:latest", "bb:latest", "example.com/team/bb:1"]
    assert info["Config"]["rootfs"]["diff_ids"]
    assert "pybuild import" in pb(store, "history", "bb").stdout
    assert json.loads(pb(store, "inspect", image_id[7:19]).stdout)["Id"] == image_id

    oci, docker = tmp_path / "bb-oci.tar", tmp_path / "bb-docker.tar"
    pb(store, "save", "bb", "-o", str(oci))
    pb(store, "save", "bb", "-o", str(docker), "--format", "docker")
    with tarfile.open(docker) as tf:
        assert "manifest.json" in tf.getnames()
    # inspect a file reference directly
    assert json.loads(pb(store, "inspect", f"oci-archive:{oci}").stdout)["Id"] == image_id

    other = tmp_path / "other"
    assert "Loaded image: bb:latest" in pb(other, "load", "-i", str(oci)).stdout
    assert "Loaded image: bb:latest" in pb(other, "load", "-i", str(docker)).stdout
    assert json.loads(pb(other, "inspect", "bb").stdout)["Id"] == image_id
    lay = tmp_path / "layout"
    with tarfile.open(oci) as tf:
        tf.extractall(lay, filter="data")
    third = tmp_path / "third"
    assert "Loaded image: bb:latest" in pb(third, "load", "-i", str(lay)).stdout

    assert "Untagged: bb2:latest" in pb(store, "rmi", "bb2").stdout
    r = pb(store, "inspect", "bb2", ok=False)
    assert r.returncode == 1 and "no such image: bb2:latest" in r.stderr
    assert "Traceback" not in r.stderr
    pb(store, "tag", "bb", "bb:again")
    out = pb(store, "rmi", image_id[7:19]).stdout                # by ID: every name goes
    assert sorted(out.split()) == sorted(["Untagged:", "bb:latest", "Untagged:", "bb:again",
                                          "Untagged:", "example.com/team/bb:1"])
    out = pb(store, "prune").stdout
    assert out.startswith("Deleted ") and " 0 blobs" not in out
    assert pb(store, "images").stdout.strip().splitlines()[1:] == []


def test_import_from_a_tar_and_the_root_env_var(tmp_path: Path):
    need("tar")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    tarball = tmp_path / "rootfs.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(rootfs), "."], check=True)
    r = run_pybuild("import", str(tarball), "-t", "from-tar",
                    env={"PYBUILD_ROOT": str(tmp_path / "envroot")})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "envroot" / "images.json").exists()


def test_errors_are_clean(tmp_path: Path):
    store = tmp_path / "store"
    r = pb(store, "load", "-i", str(tmp_path / "missing.tar"), ok=False)
    assert r.returncode == 1 and r.stderr.startswith("error: cannot open")
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    r = pb(store, "load", "-i", str(tmp_path / "junk.tar"), ok=False)
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = pb(store, "save", "nope", "-o", str(tmp_path / "x.tar"), "--format", "rar", ok=False)
    assert r.returncode == 2
    r = pb(store, "tag", "nope", "BAD NAME", ok=False)
    assert r.returncode == 1 and "no such image" in r.stderr


def test_unusable_store_and_unwritable_output_are_reported_not_raised(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    r = run_pybuild("--root", str(tmp_path / "file" / "store"), "images")
    assert r.returncode == 4 and "cannot use" in r.stderr and "--root" in r.stderr
    store = tmp_path / "store"
    pb(store, "import", str(busybox_rootfs(tmp_path / "rootfs")), "-t", "bb")
    r = pb(store, "save", "bb", "-o", str(tmp_path / "missing" / "x.tar"), ok=False)
    assert r.returncode == 1 and f"cannot write {tmp_path}/missing/x.tar" in r.stderr
