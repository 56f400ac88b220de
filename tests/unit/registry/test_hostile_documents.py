"""A hostile registry's manifests, indexes and image configs: each is a RegistryError naming
the registry (never a KeyError/TypeError/RecursionError traceback), and nothing is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import RegistryError
from builder.oci.model import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from builder.oci.reference import parse_name
from builder.registry.pull import pull
from builder.store import Store
from tests.fake_http import FakeServer, serve

_CFG = {"mediaType": OCI_CONFIG, "digest": "sha256:" + "0" * 64, "size": 2}


def _doc(**fields: object) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


MANIFESTS = {
    "deeply nested": b"[" * 100_000,
    "no config": _doc(mediaType=OCI_MANIFEST),
    "layers not a list": _doc(mediaType=OCI_MANIFEST, config=_CFG, layers=5),
    "annotations not an object": _doc(mediaType=OCI_MANIFEST, config=_CFG, layers=[],
                                      annotations=5),
    "manifests not a list": _doc(mediaType=OCI_INDEX, manifests=5),
    "platform not an object": _doc(mediaType=OCI_INDEX, manifests=[
        {**_CFG, "mediaType": OCI_MANIFEST, "platform": "linux/amd64"}]),
    "platform of numbers": _doc(mediaType=OCI_INDEX, manifests=[
        {**_CFG, "mediaType": OCI_MANIFEST, "platform": {"os": 5, "architecture": 7}}]),
    "mediaType not a string": _doc(mediaType=["x"]),
}

CONFIGS = {
    "deeply nested": b"[" * 100_000,
    "diff_ids of numbers": json.dumps({"rootfs": {"type": "layers", "diff_ids": [5]}}).encode(),
    "Env not a list": json.dumps({"config": {"Env": 5}, "rootfs": {"diff_ids": []}}).encode(),
}


def _pull(store: Store, fake: FakeServer) -> None:
    pull(store, parse_name(f"{fake.host}/a:1"), environ={"REGISTRY_AUTH_FILE": "/none"})


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_a_hostile_manifest_is_a_registry_error(tmp_path: Path, name: str) -> None:
    data = MANIFESTS[name]
    store = Store(tmp_path / "store")
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/manifests/*", lambda req: (200, {"Content-Type": OCI_MANIFEST},
                                                            data))
        with pytest.raises(RegistryError) as err:
            _pull(store, fake)
    assert fake.host in err.value.message
    assert store.images() == {}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_hostile_image_config_is_a_registry_error(tmp_path: Path, name: str) -> None:
    config = CONFIGS[name]
    manifest = _doc(mediaType=OCI_MANIFEST, layers=[], config={
        **_CFG, "digest": str(Digest.of_bytes(config)), "size": len(config)})
    store = Store(tmp_path / "store")
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/manifests/*", lambda req: (200, {"Content-Type": OCI_MANIFEST},
                                                            manifest))
        fake.route("GET", "/v2/a/blobs/*", lambda req: (200, {}, config))
        with pytest.raises(RegistryError) as err:
            _pull(store, fake)
    assert "config" in err.value.message and fake.host in err.value.message
    assert store.images() == {}
