"""The cache artifact: config round trip, deterministic bytes, and refusal of everything a
hostile or damaged cache could put in it."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from builder.cache.format import (
    CONFIG_MEDIA_TYPE,
    CacheConfig,
    CacheDamaged,
    CacheLayer,
    manifest_bytes,
    parse_manifest,
    scan_layer,
)
from builder.digest import Digest
from builder.oci.model import OCI_LAYER_ZSTD, Descriptor
from builder.store import CacheRecord

D1 = Digest.of_bytes(b"one")
B1 = Digest.of_bytes(b"blob one")
KEY = "0123456789abcdef0123456789abcdef"
KEY2 = "f" * 32


def _config() -> CacheConfig:
    layer = CacheLayer(D1, 10, Descriptor(OCI_LAYER_ZSTD, B1, 8))
    return CacheConfig((CacheRecord(KEY2, None, {"created": "2026-01-01T00:00:00Z"}),
                        CacheRecord(KEY, D1, {"kind": "exec"})), (layer,))


def test_config_round_trips_and_is_canonical() -> None:
    cfg = _config()
    data = cfg.to_bytes()
    back = CacheConfig.from_bytes(data)
    assert {r.key: r for r in back.records} == {r.key: r for r in cfg.records}
    assert back.layers == cfg.layers
    # order-independent: the same cache is the same bytes
    assert CacheConfig(tuple(reversed(cfg.records)), cfg.layers).to_bytes() == data
    assert json.loads(data)["mediaType"] == CONFIG_MEDIA_TYPE


def _mutated(change: object) -> bytes:
    doc = json.loads(_config().to_bytes())
    change(doc)  # type: ignore[operator]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d.update(mediaType="application/json"), "mediaType"),
    (lambda d: d.update(records={}), "'records' is not a list"),
    (lambda d: d["records"][0].update(key="../x"), "bad cache key"),
    (lambda d: d["records"][0].update(key="A" * 32), "bad cache key"),
    (lambda d: d["records"][0].update(diff_id="md5:abc"), "bad diff_id"),
    (lambda d: d["records"][0].update(config=[1]), "malformed config"),
    (lambda d: d["records"][0].update(config={"k": {"nested": 1}}), "small scalar"),
    (lambda d: d["records"][0].update(config={"k": "x" * 5000}), "small scalar"),
    (lambda d: d["records"][1].update(diff_id=str(Digest.of_bytes(b"other"))),
     "does not carry"),
    (lambda d: d["layers"][0].update(size=-1), "bad size"),
    (lambda d: d["layers"][0]["blob"].update(mediaType="text/plain"), "media type"),
    (lambda d: d["layers"][0].pop("blob"), "malformed layer"),
])
def test_damaged_configs_are_refused(change: object, match: str) -> None:
    with pytest.raises(CacheDamaged, match=match):
        CacheConfig.from_bytes(_mutated(change))


def test_non_json_is_refused() -> None:
    with pytest.raises(CacheDamaged, match="not valid JSON"):
        CacheConfig.from_bytes(b"\xff{")
    with pytest.raises(CacheDamaged, match="not a JSON object"):
        CacheConfig.from_bytes(b"[]")
    with pytest.raises(CacheDamaged, match="nested too deeply"):
        CacheConfig.from_bytes(b"[" * 100_000)
    with pytest.raises(CacheDamaged, match="nested too deeply"):
        parse_manifest(b"[" * 100_000)


def test_manifest_round_trip_and_foreign_manifests() -> None:
    cfg = Descriptor(CONFIG_MEDIA_TYPE, D1, 3)
    layers = (Descriptor(OCI_LAYER_ZSTD, B1, 8),)
    assert parse_manifest(manifest_bytes(cfg, layers)) == (cfg, layers)
    image = manifest_bytes(Descriptor("application/vnd.oci.image.config.v1+json", D1, 3), ())
    with pytest.raises(CacheDamaged, match="not a pybuild cache"):
        parse_manifest(image)
    with pytest.raises(CacheDamaged, match="too large"):
        parse_manifest(manifest_bytes(Descriptor(CONFIG_MEDIA_TYPE, D1, 1 << 30), ()))


def _tar(*members: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isreg() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def test_scan_layer_gives_the_diff_id_of_the_plain_tar() -> None:
    plain = _tar(_member("etc/"), _member("etc/x"), _member("link", tarfile.SYMTYPE, "/etc/x"))
    import hashlib

    want = (Digest(hashlib.sha256(plain).hexdigest()), len(plain))
    assert scan_layer(io.BytesIO(plain)) == want
    assert scan_layer(io.BytesIO(gzip.compress(plain))) == want


@pytest.mark.parametrize("member", [
    _member("../escape"), _member("/abs"), _member("a/../../b"),
    _member("hl", tarfile.LNKTYPE, "../../etc/shadow"),
    _member("hl", tarfile.LNKTYPE, "/etc/shadow"),
])
def test_scan_layer_refuses_escaping_paths(member: tarfile.TarInfo) -> None:
    with pytest.raises(CacheDamaged, match="absolute|'..'"):
        scan_layer(io.BytesIO(_tar(_member("ok"), member)))


def test_scan_layer_refuses_garbage_and_truncation() -> None:
    plain = _tar(_member("a"), _member("b"))
    with pytest.raises(CacheDamaged, match="not a readable layer"):
        scan_layer(io.BytesIO(gzip.compress(plain)[:30]))
    with pytest.raises(CacheDamaged, match="not a readable layer"):
        scan_layer(io.BytesIO(b"garbage" * 100))


def test_scan_layer_refuses_giant_extended_headers_before_reading_them() -> None:
    """The applier's guard (oci.apply.GuardedTarInfo) serves the import check too."""
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 8 * 1024**3 - 1  # claims 8 GiB, holds 4 KiB
    data = pax.tobuf(format=tarfile.USTAR_FORMAT) + b"\0" * 4096
    with pytest.raises(CacheDamaged, match="extended header"):
        scan_layer(io.BytesIO(data))


def test_scan_layer_stops_at_the_declared_size() -> None:
    """A tiny blob that decompresses to far more than its record declares (a bomb) is
    refused as soon as it passes the declared size, not after reading all of it."""
    plain = _tar(_member("a"))
    assert scan_layer(io.BytesIO(plain), len(plain))[1] == len(plain)
    bomb = gzip.compress(plain + b"\0" * (8 << 20))
    with pytest.raises(CacheDamaged, match="larger than its declared"):
        scan_layer(io.BytesIO(bomb), len(plain))
