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


def test_a_failed_layer_stops_the_downloads_not_yet_started(tmp_path: Path) -> None:
    """Once one layer has failed the pull fails: the layers still queued are not fetched
    (nor, after Ctrl-C, would they be)."""
    import time

    from builder.oci.model import OCI_LAYER_GZIP

    layers = [b"layer-%d" % i for i in range(12)]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [
        str(Digest.of_bytes(x)) for x in layers]}}).encode()
    manifest = _doc(mediaType=OCI_MANIFEST, config={
        **_CFG, "digest": str(Digest.of_bytes(config)), "size": len(config)}, layers=[
        {"mediaType": OCI_LAYER_GZIP, "digest": str(Digest.of_bytes(x)), "size": len(x)}
        for x in layers])

    def blob(req: object) -> tuple[int, dict[str, str], bytes]:
        if str(Digest.of_bytes(config)) in req.path:  # type: ignore[attr-defined]
            return 200, {}, config
        if str(Digest.of_bytes(layers[0])) in req.path:  # type: ignore[attr-defined]
            return 404, {}, b""
        time.sleep(0.3)
        return 503, {}, b""

    store = Store(tmp_path / "store")
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/a/manifests/*", lambda req: (200, {"Content-Type": OCI_MANIFEST},
                                                            manifest))
        fake.route("GET", "/v2/a/blobs/*", blob)
        with pytest.raises(RegistryError, match="404"):
            pull(store, parse_name(f"{fake.host}/a:1"), environ={"REGISTRY_AUTH_FILE": "/none"},
                 jobs=2)
    fetched = [s for s in fake.seen if "/blobs/" in s.path]
    assert len(fetched) < 6, len(fetched)   # config + the first two, give or take a race
