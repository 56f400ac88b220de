"""Cross-checks with skopeo (Debian): what we write it reads and copies; what it writes we load
with the same digests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder.oci.image import get_image, import_rootfs
from builder.oci.layout import export, load_archive, load_layout
from builder.oci.model import Compression
from builder.oci.reference import parse
from builder.store import Store
from tests.integration.oci_fixtures import busybox_rootfs, need

pytestmark = pytest.mark.integration


def skopeo(*args: str) -> str:
    # --insecure-policy: no /etc/containers/policy.json is needed for local transports.
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, str]:
    need("skopeo")
    tmp = tmp_path_factory.mktemp("skopeo")
    store = Store(tmp / "store")
    desc = import_rootfs(store, busybox_rootfs(tmp / "rootfs"), source_date_epoch=1_700_000_000)
    store.set_image("docker.io/library/bb:latest", desc.digest)
    return store, str(desc.digest)


@pytest.mark.parametrize("comp", list(Compression))
def test_skopeo_reads_and_copies_our_oci_archive(image: tuple[Store, str], tmp_path: Path,
                                                 comp: Compression):
    store, digest = image
    img = get_image(store, parse(f"x@{digest}").digest)  # type: ignore[arg-type]
    archive = tmp_path / "bb.tar"
    desc = export(store, img.manifest_digest, parse(f"oci-archive:{archive}"),
                  name="docker.io/library/bb:latest", compression=comp)
    info = json.loads(skopeo("inspect", f"oci-archive:{archive}"))
    assert info["Digest"] == str(desc.digest)
    raw = json.loads(skopeo("inspect", "--raw", f"oci-archive:{archive}"))
    assert raw["layers"][0]["mediaType"] == comp.oci_media_type
    cfg = json.loads(skopeo("inspect", "--config", f"oci-archive:{archive}"))
    assert cfg["rootfs"]["diff_ids"] == [str(d) for d in img.config.diff_ids]
    skopeo("copy", f"oci-archive:{archive}", f"oci:{tmp_path / 'copy'}:t")
    if comp is not Compression.ZSTD:  # docker-archive (schema 2) has no zstd media type
        skopeo("copy", f"oci-archive:{archive}", f"docker-archive:{tmp_path / 'd.tar'}:bb:latest")


def test_skopeo_reads_our_layout_dir_and_docker_archive(image: tuple[Store, str],
                                                        tmp_path: Path):
    store, digest = image
    mdig = parse(f"x@{digest}").digest
    assert mdig is not None
    lay = tmp_path / "layout"
    desc = export(store, mdig, parse(f"oci-layout://{lay}:v1"), name="docker.io/library/bb:v1")
    assert json.loads(skopeo("inspect", f"oci:{lay}:v1"))["Digest"] == str(desc.digest)
    # a second tag into the same layout keeps the first
    export(store, mdig, parse(f"oci-layout://{lay}:v2"), compression=Compression.ZSTD)
    skopeo("inspect", f"oci:{lay}:v1")
    skopeo("inspect", f"oci:{lay}:v2")
    darc = tmp_path / "d.tar"
    export(store, mdig, parse(f"docker-archive:{darc}"), name="docker.io/library/bb:latest")
    cfg = json.loads(skopeo("inspect", "--config", f"docker-archive:{darc}"))
    assert cfg["rootfs"]["diff_ids"] == [str(d) for d in get_image(store, mdig).config.diff_ids]
    skopeo("copy", f"docker-archive:{darc}", f"oci:{tmp_path / 'from-docker'}:x")


def test_what_skopeo_writes_loads_with_the_same_digests(image: tuple[Store, str],
                                                        tmp_path: Path):
    store, digest = image
    mdig = parse(f"x@{digest}").digest
    assert mdig is not None
    ours = get_image(store, mdig)
    archive = tmp_path / "bb.tar"
    export(store, mdig, parse(f"oci-archive:{archive}"), name="docker.io/library/bb:latest")
    # skopeo → OCI layout dir → a fresh store
    skopeo("copy", f"oci-archive:{archive}", f"oci:{tmp_path / 'lay'}:sk")
    sk_digest = json.loads(skopeo("inspect", f"oci:{tmp_path / 'lay'}:sk"))["Digest"]
    fresh = Store(tmp_path / "fresh")
    loaded = load_layout(fresh, tmp_path / "lay", tag="sk")
    assert str(loaded[0].manifest.digest) == sk_digest
    img = get_image(fresh, loaded[0].manifest.digest)
    assert img.id == ours.id and img.config.diff_ids == ours.config.diff_ids
    # skopeo → docker-archive → a fresh store: same image ID (config digest) and diff_ids
    skopeo("copy", f"oci-archive:{archive}", f"docker-archive:{tmp_path / 'd.tar'}:bb:sk")
    fresh2 = Store(tmp_path / "fresh2")
    loaded = load_archive(fresh2, tmp_path / "d.tar")
    assert loaded[0].name == "docker.io/library/bb:sk"
    img = get_image(fresh2, loaded[0].manifest.digest)
    assert img.id == ours.id and img.config.diff_ids == ours.config.diff_ids
    # skopeo → OCI archive → load_archive (auto-detected as OCI)
    skopeo("copy", f"oci-archive:{archive}", f"oci-archive:{tmp_path / 'o.tar'}:sk")
    fresh3 = Store(tmp_path / "fresh3")
    loaded = load_archive(fresh3, tmp_path / "o.tar")
    assert get_image(fresh3, loaded[0].manifest.digest).id == ours.id


def test_exporting_twice_reuses_the_remembered_compression(image: tuple[Store, str],
                                                           tmp_path: Path):
    store, digest = image
    mdig = parse(f"x@{digest}").digest
    assert mdig is not None
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    export(store, mdig, parse(f"oci-archive:{a}"), name="docker.io/library/bb:latest")
    blobs_after_first = set(store.blobs())
    export(store, mdig, parse(f"oci-archive:{b}"), name="docker.io/library/bb:latest")
    assert set(store.blobs()) == blobs_after_first
    assert a.read_bytes() == b.read_bytes()                # archives are byte-stable too
