"""--cache-to / --cache-from type=local on real builds: the CI scenario (one machine exports,
a brand-new store imports), what re-runs, mode=min vs max, damaged or hostile caches,
atomic and incremental export."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder import events
from builder.cache import CacheSpec, LocalLayout, parse_cache_spec
from builder.digest import Digest
from builder.errors import ImageError
from builder.store import Store
from tests.integration.build_helpers import Run, busybox_store, run_build

DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest AS builder
RUN echo built > /artifact

FROM localhost/pybuild/busybox:latest
RUN echo base > /base.txt
COPY app.txt /app.txt
COPY --from=builder /artifact /artifact
RUN cat /app.txt /artifact > /out.txt
"""
ALL_STEPS = 5


def to(d: Path, extra: str = "") -> tuple[CacheSpec, ...]:
    return (parse_cache_spec(f"type=local,dest={d}{extra}", "to"),)


def frm(d: Path) -> tuple[CacheSpec, ...]:
    return (parse_cache_spec(f"type=local,src={d}", "from"),)


def warnings(run: Run) -> list[str]:
    return [e.diagnostic.message for e in run.events if isinstance(e, events.Warning)]


def short(run: Run) -> list[str]:
    return [n.split("] ", 1)[1] for n in run.ran]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "app.txt").write_text("app v1\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


@pytest.fixture
def exported(tmp_path: Path, ctx: Path) -> tuple[Store, Path, Run]:
    """Machine A built the context and exported its cache (mode=max) to tmp/cache."""
    store_a = busybox_store(tmp_path / "a")
    cache = tmp_path / "cache"
    first = run_build(store_a, ctx, cache_to=to(cache, ",mode=max"))
    assert len(first.ran) == ALL_STEPS
    return store_a, cache, first


def fresh(tmp_path: Path, name: str = "b") -> Store:
    """A brand-new machine: an empty store plus the base image."""
    return busybox_store(tmp_path / name)


def test_a_fresh_store_with_the_cache_runs_nothing_and_makes_the_same_image(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    _, cache, first = exported
    store_b = fresh(tmp_path)
    again = run_build(store_b, ctx, cache_from=frm(cache))
    # no step ran: no StepStarted/StepFinished, no RUN output
    assert again.ran == [] and len(again.cached) == ALL_STEPS and again.logs == []
    assert warnings(again) == []
    # `created` travels with the cache: same config, hence the same image ID and manifest
    assert again.result.config_digest == first.result.config_digest
    assert again.result.manifest_digest == first.result.manifest_digest


def test_with_source_date_epoch_the_image_is_the_same_too(tmp_path: Path, ctx: Path) -> None:
    store_a = busybox_store(tmp_path / "a")
    cache = tmp_path / "cache"
    first = run_build(store_a, ctx, cache_to=to(cache, ",mode=max"),
                      source_date_epoch=1_700_000_000)
    again = run_build(fresh(tmp_path), ctx, cache_from=frm(cache),
                      source_date_epoch=1_700_000_000)
    assert again.ran == [] and again.result.config_digest == first.result.config_digest
    # a different SOURCE_DATE_EPOCH is a different cache key for every layer step
    other = run_build(fresh(tmp_path, "c"), ctx, cache_from=frm(cache), source_date_epoch=5)
    assert len(other.ran) == ALL_STEPS


def test_the_imported_image_is_complete_in_the_new_store(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    """Every layer of the image was fetched (verified) into B: it can be exported whole."""
    _, cache, _ = exported
    store_b = fresh(tmp_path)
    again = run_build(store_b, ctx, cache_from=frm(cache), tags=("localhost/t/x:1",))
    from builder.oci.image import get_image

    img = get_image(store_b, Digest.parse(again.result.manifest_digest))
    for diff_id in img.config.diff_ids:
        assert store_b.get_layer(diff_id) is not None


def test_changing_one_file_reruns_only_its_copy_and_what_follows(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    _, cache, _ = exported
    (ctx / "app.txt").write_text("app v2\n")
    again = run_build(fresh(tmp_path), ctx, cache_from=frm(cache))
    assert short(again) == ["COPY app.txt /app.txt", "COPY --from=builder /artifact /artifact",
                            "RUN cat /app.txt /artifact > /out.txt"]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_an_intermediate_stage_is_cached_only_with_mode_max(
        tmp_path: Path, ctx: Path, mode: str) -> None:
    store_a = busybox_store(tmp_path / "a")
    cache = tmp_path / "cache"
    run_build(store_a, ctx, cache_to=to(cache, f",mode={mode}"))
    again = run_build(fresh(tmp_path), ctx, cache_from=frm(cache))
    if mode == "max":
        assert again.ran == []
    else:
        # the builder stage's RUN is not in the image's layer chain: not exported with min;
        # its cache key does not depend on its output, so the COPY --from still hits
        assert short(again) == ["RUN echo built > /artifact"]


def test_an_absent_cache_directory_is_a_warning(tmp_path: Path, ctx: Path) -> None:
    missing = tmp_path / "no-such-cache"
    run = run_build(fresh(tmp_path), ctx, cache_from=frm(missing))
    assert len(run.ran) == ALL_STEPS
    [w] = warnings(run)
    assert str(missing) in w and "no such directory" in w


# --- damaged and hostile caches ----------------------------------------------------------------
def _doc(cache: Path, digest: str) -> Any:
    return json.loads((cache / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def _put(cache: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (cache / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def rewrite(cache: Path, mutate: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    """Edit the exported cache the way an attacker with write access to DIR could: change the
    config and manifest, then re-point index.json (all digests made consistent)."""
    index = json.loads((cache / "index.json").read_bytes())
    manifest = _doc(cache, index["manifests"][0]["digest"])
    config = _doc(cache, manifest["config"]["digest"])
    mutate(config, manifest)
    manifest["config"].update(_put(cache, json.dumps(config).encode()))
    index["manifests"][0].update(_put(cache, json.dumps(manifest).encode()))
    (cache / "index.json").write_text(json.dumps(index))


def _record_of(config: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in config["records"] if r["config"].get("kind") == kind
                and r["diff_id"])


def _layer_blob(cache: Path, config: dict[str, Any], diff_id: str) -> Path:
    layer = next(la for la in config["layers"] if la["diff_id"] == diff_id)
    return cache / "blobs" / "sha256" / layer["blob"]["digest"].split(":")[1]


def _config(cache: Path) -> dict[str, Any]:
    index = json.loads((cache / "index.json").read_bytes())
    result: dict[str, Any] = _doc(cache, _doc(cache, index["manifests"][0]["digest"])
                                  ["config"]["digest"])
    return result


def test_a_blob_with_wrong_bytes_drops_its_record_only(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    _, cache, first = exported
    config = _config(cache)
    # COPY app.txt: its layer is its own (COPY --from=builder makes the same layer as the
    # builder's RUN, so corrupting that one would drop two records)
    diff_ids = [r["diff_id"] for r in config["records"]]
    copy_rec = next(r for r in config["records"] if r["config"].get("kind") == "copy"
                    and r["diff_id"] and diff_ids.count(r["diff_id"]) == 1)
    blob = _layer_blob(cache, config, copy_rec["diff_id"])
    blob.write_bytes(b"\0" * blob.stat().st_size)  # same size, wrong bytes
    store_b = fresh(tmp_path)
    run = run_build(store_b, ctx, cache_from=frm(cache))
    assert len(run.ran) == 1 and run.ran[0].split("] ", 1)[1].startswith("COPY")
    [w] = warnings(run)
    assert str(cache) in w and "digest mismatch" in w
    # the COPY re-ran and (deterministic layers) made the very blob the cache should have
    # held: what B stores under that name are the right bytes, not the cache's zeros
    if store_b.has_blob(Digest(blob.name)):
        assert hashlib.sha256(store_b.blob_path(Digest(blob.name)).read_bytes()).hexdigest() \
            == blob.name
    assert run.result.config_digest == first.result.config_digest  # same bytes rebuilt


def test_a_missing_blob_drops_its_record_only(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    _, cache, _ = exported
    config = _config(cache)
    rec = _record_of(config, "exec")
    _layer_blob(cache, config, rec["diff_id"]).unlink()
    run = run_build(fresh(tmp_path), ctx, cache_from=frm(cache))
    [w] = warnings(run)
    assert str(cache) in w and "is missing" in w
    assert len(run.ran) >= 1  # that RUN (and, if it is in the chain, what follows) ran


@pytest.mark.parametrize("damage", ["truncated index", "index of another format",
                                    "config not json", "record with a bad key",
                                    "a symlinked blob"])
def test_a_damaged_cache_is_a_warning_and_the_build_runs_without_it(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run], damage: str) -> None:
    _, cache, first = exported
    index = cache / "index.json"
    if damage == "truncated index":
        index.write_bytes(index.read_bytes()[:40])
        expect = "index.json is malformed"
    elif damage == "index of another format":
        index.write_text('{"manifests": [{"digest": "sha256:nothex", "size": 1}]}')
        expect = "index.json is malformed"
    elif damage == "config not json":
        doc = json.loads(index.read_bytes())
        manifest = _doc(cache, doc["manifests"][0]["digest"])
        manifest["config"].update(_put(cache, b"{not json"))
        doc["manifests"][0].update(_put(cache, json.dumps(manifest).encode()))
        index.write_text(json.dumps(doc))
        expect = "not valid JSON"
    elif damage == "record with a bad key":
        rewrite(cache, lambda c, m: c["records"][0].update(key="../../etc/passwd"))
        expect = "bad cache key"
    else:
        doc = json.loads(index.read_bytes())
        manifest_blob = cache / "blobs" / "sha256" / doc["manifests"][0]["digest"][7:]
        target = tmp_path / "elsewhere"
        target.write_bytes(manifest_blob.read_bytes())
        manifest_blob.unlink()
        manifest_blob.symlink_to(target)
        expect = "a symlink"
    store_b = fresh(tmp_path)
    run = run_build(store_b, ctx, cache_from=frm(cache))
    assert len(run.ran) == ALL_STEPS
    [w] = warnings(run)
    assert str(cache) in w and expect in w, w
    assert run.result.stats.cached == 0


def _hostile_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        data = b"owned\n"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_record_naming_a_path_escaping_layer_is_refused(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    _, cache, _ = exported
    evil = _hostile_layer()
    evil_diff = "sha256:" + hashlib.sha256(evil).hexdigest()

    def mutate(config: dict[str, Any], manifest: dict[str, Any]) -> None:
        rec = _record_of(config, "exec")
        blob = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_put(cache, evil)}
        config["layers"].append({"diff_id": evil_diff, "size": len(evil), "blob": blob})
        manifest["layers"].append(blob)
        for r in config["records"]:
            if r["diff_id"] == rec["diff_id"]:
                r["diff_id"] = evil_diff

    rewrite(cache, mutate)
    store_b = fresh(tmp_path)
    run = run_build(store_b, ctx, cache_from=frm(cache))
    assert run.ran  # the poisoned steps ran for real
    ws = warnings(run)
    assert ws and all(str(cache) in w and "'..'" in w for w in ws)
    assert store_b.get_layer(Digest.parse(evil_diff)) is None
    assert not store_b.has_blob(Digest.parse(evil_diff))
    assert not (tmp_path / "escaped.txt").exists()
    assert not any(r.diff_id == Digest.parse(evil_diff) for r in store_b.cache_records())


def test_a_layer_whose_bytes_are_not_its_diff_id_is_refused(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    """The blob digest checks out but it holds another layer than the record claims: taking
    it would poison B's layer records for every image that shares the claimed diff_id."""
    _, cache, _ = exported
    config = _config(cache)
    runs = [r for r in config["records"] if r["config"].get("kind") == "exec" and r["diff_id"]]
    assert len(runs) >= 2
    a, b = runs[0], runs[1]

    def mutate(config: dict[str, Any], manifest: dict[str, Any]) -> None:
        la = next(x for x in config["layers"] if x["diff_id"] == a["diff_id"])
        lb = next(x for x in config["layers"] if x["diff_id"] == b["diff_id"])
        la["blob"], lb["blob"] = lb["blob"], la["blob"]

    rewrite(cache, mutate)
    store_b = fresh(tmp_path)
    run = run_build(store_b, ctx, cache_from=frm(cache))
    ws = warnings(run)
    assert ws and all("holds layer" in w for w in ws)
    for rec in store_b.cache_records():
        if rec.diff_id is not None:
            layer = store_b.get_layer(rec.diff_id)
            assert layer is not None
            from builder.cache.format import scan_layer

            with store_b.open_blob(layer.best_for_reading().digest) as r:
                assert scan_layer(r)[0] == rec.diff_id


# --- export: atomic, incremental, deterministic ------------------------------------------------
def _tree(d: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_failed_export_leaves_the_previous_one_intact(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store_a, cache, first = exported
    before = _tree(cache)
    (ctx / "app.txt").write_text("app v2\n")
    calls = []
    real = LocalLayout.put_blob

    def failing(self: LocalLayout, desc: Any, opener: Any) -> None:
        calls.append(desc)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(self, desc, opener)

    monkeypatch.setattr(LocalLayout, "put_blob", failing)
    with pytest.raises(ImageError, match="cannot export the build cache"):
        run_build(store_a, ctx, cache_to=to(cache, ",mode=max"))
    monkeypatch.undo()
    after = _tree(cache)
    assert after["index.json"] == before["index.json"]
    assert set(before) <= set(after)  # new blobs may have landed; nothing old is gone
    assert not [n for n in os.listdir(cache / "blobs" / "sha256") if n.startswith(".tmp")]
    # the previous export still works as a whole
    (ctx / "app.txt").write_text("app v1\n")
    again = run_build(fresh(tmp_path), ctx, cache_from=frm(cache))
    assert again.ran == [] and again.result.config_digest == first.result.config_digest


def test_ignore_error_turns_a_failed_export_into_a_warning(
        tmp_path: Path, ctx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_a = busybox_store(tmp_path / "a")

    def failing(self: LocalLayout, desc: Any, opener: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalLayout, "put_blob", failing)
    run = run_build(store_a, ctx, cache_to=to(tmp_path / "cache", ",ignore-error=true"))
    [w] = warnings(run)
    assert "No space left on device" in w and "ignore-error" in w


def test_exporting_again_rewrites_no_blob_and_collects_stale_ones(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    store_a, cache, _ = exported
    before = _tree(cache)
    again = run_build(store_a, ctx, cache_to=to(cache, ",mode=max"))
    assert again.ran == []
    assert _tree(cache) == before  # same bytes, same inodes, same mtimes: nothing rewritten
    (ctx / "app.txt").write_text("app v2\n")
    changed = run_build(store_a, ctx, cache_to=to(cache, ",mode=max"))
    assert len(changed.ran) == 3
    after = _tree(cache)
    kept = set(before) & set(after)
    assert kept and all(after[p][1:] == before[p][1:] for p in kept if p.startswith("blobs"))
    stale = set(before) - set(after)
    assert stale  # the old COPY layer, config and manifest were collected
    # still a valid layout, every blob reachable and verified by our reader …
    config = _config(cache)
    assert {la["blob"]["digest"][7:] for la in config["layers"]} <= \
        {Path(p).name for p in after}
    # … and by skopeo, which verifies every blob it copies
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed (Debian package skopeo)")
    out = subprocess.run(["skopeo", "copy", f"oci:{cache}:latest",
                          f"oci:{tmp_path / 'copied'}:latest"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_same_cache_exports_the_same_bytes(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    store_a, cache, _ = exported
    other = tmp_path / "cache2"
    run_build(store_a, ctx, cache_to=to(other, ",mode=max"))
    assert {p: v[0] for p, v in _tree(other).items()} == \
        {p: v[0] for p, v in _tree(cache).items()}


def test_tags_share_one_directory(tmp_path: Path, ctx: Path) -> None:
    store_a = busybox_store(tmp_path / "a")
    cache = tmp_path / "cache"
    run_build(store_a, ctx, cache_to=to(cache, ",tag=main,mode=max"))
    (ctx / "app.txt").write_text("app v2\n")
    run_build(store_a, ctx, cache_to=to(cache, ",tag=feature"))
    tags = [m["annotations"]["org.opencontainers.image.ref.name"]
            for m in json.loads((cache / "index.json").read_bytes())["manifests"]]
    assert tags == ["feature", "main"]
    (ctx / "app.txt").write_text("app v1\n")
    spec = (parse_cache_spec(f"type=local,src={cache},tag=main", "from"),)
    again = run_build(fresh(tmp_path), ctx, cache_from=spec)
    assert again.ran == []


def test_gzip_compression_is_honoured(tmp_path: Path, ctx: Path) -> None:
    store_a = busybox_store(tmp_path / "a")
    cache = tmp_path / "cache"
    first = run_build(store_a, ctx, cache_to=to(cache, ",compression=gzip,mode=max"))
    config = _config(cache)
    assert config["layers"] and all(la["blob"]["mediaType"].endswith("+gzip")
                                    for la in config["layers"])
    again = run_build(fresh(tmp_path), ctx, cache_from=frm(cache))
    assert again.ran == []
    # same image ID; the stored manifest names B's gzip blobs where A's names zstd ones
    assert again.result.config_digest == first.result.config_digest


def test_one_directory_can_be_both_source_and_destination(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    """The usual CI loop (restore DIR, build with --cache-from DIR --cache-to DIR, save DIR):
    the export replaces the tag and collects what it no longer names, so DIR does not grow
    with every run (buildx's local cache does; its docs suggest a move-dir workaround)."""
    _, cache, _ = exported
    sizes = []
    for n in range(3):
        (ctx / "app.txt").write_text(f"app run {n}\n")
        store = fresh(tmp_path, f"runner{n}")
        run = run_build(store, ctx, cache_from=frm(cache), cache_to=to(cache, ",mode=max"))
        assert short(run)[0] == "COPY app.txt /app.txt" and len(run.ran) == 3
        sizes.append(len(os.listdir(cache / "blobs" / "sha256")))
    assert sizes[0] == sizes[1] == sizes[2]
    again = run_build(fresh(tmp_path, "last"), ctx, cache_from=frm(cache))
    assert again.ran == []


def test_a_later_source_stands_in_for_a_damaged_record_of_an_earlier_one(
        tmp_path: Path, ctx: Path, exported: tuple[Store, Path, Run]) -> None:
    _, cache, first = exported
    good = tmp_path / "good-copy"
    shutil.copytree(cache, good)
    config = _config(cache)
    rec = _record_of(config, "exec")
    blob = _layer_blob(cache, config, rec["diff_id"])
    blob.write_bytes(b"\0" * blob.stat().st_size)
    run = run_build(fresh(tmp_path), ctx, cache_from=(*frm(cache), *frm(good)))
    assert run.ran == [] and run.result.config_digest == first.result.config_digest
    [w] = warnings(run)
    assert str(cache) in w and "digest mismatch" in w
