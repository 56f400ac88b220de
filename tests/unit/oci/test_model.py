"""OCI model: canonical JSON, round trips, media types."""

from __future__ import annotations

import json

import pytest

from builder.digest import Digest
from builder.oci import model as m

D1 = Digest("1" * 64)
D2 = Digest("2" * 64)


def test_canonical_json_is_sorted_compact_utf8():
    assert m.canonical_json({"b": 1, "a": ["é", {"d": 2, "c": 3}]}) == \
        '{"a":["é",{"c":3,"d":2}],"b":1}'.encode()


def test_image_config_round_trip_and_stable_bytes():
    cfg = m.ImageConfig(
        created="2024-01-01T00:00:00Z",
        config=m.ContainerConfig(user="app", env=("PATH=/bin",), cmd=("sh",), entrypoint=(),
                                 exposed_ports=("80/tcp",), volumes=("/data",),
                                 labels={"a": "b"}, working_dir="/w", shell=("/bin/sh", "-c"),
                                 healthcheck={"Test": ["CMD", "true"]}),
        diff_ids=(D1,), history=(m.History(created_by="x"), m.History(empty_layer=True)))
    data = cfg.to_bytes()
    assert m.ImageConfig.from_bytes(data) == cfg
    assert m.ImageConfig.from_bytes(data).to_bytes() == data
    j = json.loads(data)
    assert j["rootfs"] == {"type": "layers", "diff_ids": [str(D1)]}
    assert j["config"]["Entrypoint"] == [] and j["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert "Cmd" not in json.loads(m.ImageConfig().to_bytes())["config"]


def test_manifest_and_index_round_trip():
    man = m.Manifest(m.Descriptor(m.OCI_CONFIG, D1, 10),
                     (m.Descriptor(m.OCI_LAYER_GZIP, D2, 20, {"k": "v"}),))
    assert m.Manifest.from_bytes(man.to_bytes()) == man
    idx = m.Index((m.Descriptor(m.OCI_MANIFEST, D1, 5, platform=m.Platform("linux", "arm64",
                                                                            "v8")),))
    assert m.Index.from_bytes(idx.to_bytes()) == idx
    with pytest.raises(ValueError):
        m.Manifest.from_bytes(idx.to_bytes())
    with pytest.raises(ValueError):
        m.Manifest.from_bytes(b"[]")
    with pytest.raises(ValueError, match="descriptor"):
        m.Descriptor.from_json({"mediaType": "x", "size": 1})


def test_docker_schema2_manifest_is_read():
    doc = {"schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST,
           "config": {"mediaType": m.DOCKER_CONFIG, "digest": str(D1), "size": 3},
           "layers": [{"mediaType": m.DOCKER_LAYER_GZIP, "digest": str(D2), "size": 4}]}
    man = m.Manifest.from_json(doc)
    assert m.Compression.of_media_type(man.layers[0].media_type) is m.Compression.GZIP


@pytest.mark.parametrize(("mt", "comp"), [
    (m.OCI_LAYER, m.Compression.NONE), (m.DOCKER_LAYER, m.Compression.NONE),
    (m.OCI_LAYER_GZIP, m.Compression.GZIP), (m.DOCKER_LAYER_GZIP, m.Compression.GZIP),
    (m.OCI_LAYER_ZSTD, m.Compression.ZSTD)])
def test_layer_media_types(mt: str, comp: m.Compression):
    assert m.Compression.of_media_type(mt) is comp
    with pytest.raises(ValueError):
        m.Compression.of_media_type(m.OCI_CONFIG)
