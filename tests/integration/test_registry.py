"""Pull and push against a real registry (Debian's docker-registry), cross-checked with
skopeo and podman; error paths through the CLI (exit code 5, nothing half-stored); a hostile
registry (an in-process fake) whose blob does not match its digest."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.image import get_image, import_rootfs
from builder.oci.layout import export
from builder.oci.model import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
)
from builder.oci.reference import parse
from builder.registry.transport import Client
from builder.store import Store
from tests.conftest import run_pybuild
from tests.fake_http import FakeServer, serve
from tests.integration.oci_fixtures import busybox_rootfs, need
from tests.integration.registry_fixture import PASSWORD, USER, RunningRegistry

pytestmark = pytest.mark.integration

# The registry is plain HTTP on 127.0.0.1: pybuild allows that without configuration.
ENV = {"REGISTRY_AUTH_FILE": "/nonexistent/auth.json"}


def skopeo(*args: str) -> str:
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with `localhost/bb:1`, a busybox image made at test time."""
    tmp = tmp_path_factory.mktemp("regstore")
    store = Store(tmp / "root")
    desc = import_rootfs(store, busybox_rootfs(tmp / "rootfs"), source_date_epoch=1_700_000_000)
    store.set_image("localhost/bb:1", desc.digest)
    return store.root


def _pb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_pybuild(*args, env={**ENV, **(env or {})})


def _no_temp_files(root: Path) -> None:
    tmp = root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.mark.parametrize("comp", ["gzip", "zstd"])
def test_push_gives_the_digest_save_writes_and_skopeo_reads(
        registry: RunningRegistry, image_root: Path, tmp_path: Path, comp: str) -> None:
    need("skopeo")
    dest = f"{registry.host}/pushed-{comp}:1"
    proc = _pb("push", "--root", str(image_root), "--compression", comp, "localhost/bb:1", dest)
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.split("Digest: ")[1].split()[0]
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{dest}"))
    assert inspected["Digest"] == digest
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{dest}"))
    assert all(layer["mediaType"].endswith(f"+{comp}") for layer in raw["layers"])
    archive = tmp_path / "img.tar"
    saved = _pb("--root", str(image_root), "save", "--compression", comp, "-o", str(archive),
                "localhost/bb:1")
    assert saved.returncode == 0, saved.stderr
    assert json.loads(skopeo("inspect", f"oci-archive:{archive}"))["Digest"] == digest
    # pushing again finds every blob there (HEAD) and uploads nothing
    again = _pb("push", "--root", str(image_root), "--compression", comp, "localhost/bb:1",
                dest)
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in again.stderr.splitlines()
            if line.split()[0] in ("exists", "pushed", "mounted")
            and not line.startswith(f"pushed {dest}")] == ["exists", "exists"]


def test_skopeo_copied_layout_pulls_with_the_same_manifest_and_config(
        registry: RunningRegistry, image_root: Path, tmp_path: Path) -> None:
    need("skopeo")
    store = Store(image_root)
    digest = store.get_image("localhost/bb:1")
    assert digest is not None
    layout_dir = tmp_path / "layout"
    export(store, digest, parse(f"oci-layout://{layout_dir}:v1"))
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout_dir}:v1",
           f"docker://{registry.host}/copied:v1")
    remote = json.loads(skopeo("inspect", "--tls-verify=false",
                               f"docker://{registry.host}/copied:v1"))
    root = tmp_path / "fresh"
    proc = _pb("--root", str(root), "pull", f"{registry.host}/copied:v1")
    assert proc.returncode == 0, proc.stderr
    assert f"Digest: {remote['Digest']}" in proc.stdout
    assert f"{registry.host}/copied:v1" in proc.stdout
    fresh = Store(root)
    assert fresh.get_image(f"{registry.host}/copied:v1") == Digest.parse(remote["Digest"])
    pulled = get_image(fresh, Digest.parse(remote["Digest"]))
    assert pulled.config_bytes == get_image(store, digest).config_bytes
    # the layers are recorded, so the image can be saved and checked out at once
    inspect = _pb("--root", str(root), "inspect", f"{registry.host}/copied:v1")
    assert inspect.returncode == 0 and json.loads(inspect.stdout)["Id"] == str(pulled.id)
    # pushed on to another repository of the same registry, the blobs are mounted, not sent
    onward = _pb("--root", str(root), "push", f"{registry.host}/copied:v1",
                 f"{registry.host}/onward:v1")
    assert onward.returncode == 0, onward.stderr
    assert onward.stderr.count("mounted ") == 2 and "\npushed " not in onward.stderr.replace(
        f"pushed {registry.host}/onward:v1", "")
    assert json.loads(skopeo("inspect", "--tls-verify=false",
                             f"docker://{registry.host}/onward:v1"))["Digest"] == remote["Digest"]
    # a second pull stores nothing new and gives the same answer
    blobs = sorted(p.name for p in (root / "blobs" / "sha256").iterdir())
    assert _pb("--root", str(root), "pull", "-q", f"{registry.host}/copied:v1").returncode == 0
    assert sorted(p.name for p in (root / "blobs" / "sha256").iterdir()) == blobs
    _no_temp_files(root)


def _other_platform(store: Store, digest: Digest, pushed: Manifest,
                    arch: str) -> tuple[Manifest, bytes]:
    """A manifest for `arch` over the pushed layers (only the config differs)."""
    cfg = json.loads(get_image(store, digest).config_bytes)
    cfg["architecture"] = arch
    cfg_bytes = json.dumps(cfg).encode()
    man = Manifest(Descriptor(OCI_CONFIG, Digest.of_bytes(cfg_bytes), len(cfg_bytes)),
                   pushed.layers, OCI_MANIFEST)
    return man, cfg_bytes


def test_multi_platform_index_pulls_the_host_platform(
        registry: RunningRegistry, image_root: Path, tmp_path: Path) -> None:
    store = Store(image_root)
    digest = store.get_image("localhost/bb:1")
    assert digest is not None
    host = Platform.host()
    other_arch = "s390x" if host.architecture != "s390x" else "amd64"
    repo = "multi"
    # the host image, pushed by digest (gzip), and a second-platform manifest beside it
    pushed = _pb("push", "--root", str(image_root), "localhost/bb:1",
                 f"{registry.host}/{repo}:host")
    assert pushed.returncode == 0, pushed.stderr
    client = Client(registry.host, repo, push=True, environ=ENV)
    host_man = client.get_manifest("host")
    other, other_cfg = _other_platform(store, digest, Manifest.from_bytes(host_man.data),
                                       other_arch)
    client.upload_blob(other.config.digest, len(other_cfg), lambda: other_cfg)
    other_digest = client.put_manifest("other", OCI_MANIFEST, other.to_bytes())
    index = Index((
        Descriptor(OCI_MANIFEST, other_digest, len(other.to_bytes()),
                   platform=Platform("linux", other_arch)),
        Descriptor(OCI_MANIFEST, host_man.digest, len(host_man.data), platform=host),
    ), OCI_INDEX)
    index_digest = client.put_manifest("1", OCI_INDEX, index.to_bytes())
    root = tmp_path / "fresh"
    proc = _pb("--root", str(root), "pull", f"{registry.host}/{repo}:1")
    assert proc.returncode == 0, proc.stderr
    fresh = Store(root)
    # the name keeps pointing at what the registry serves: the index
    assert fresh.get_image(f"{registry.host}/{repo}:1") == index_digest
    img = get_image(fresh, index_digest)
    assert img.manifest_digest == host_man.digest
    assert img.config.architecture == host.architecture
    assert not fresh.has_blob(other.config.digest)      # the other platform was not fetched
    # --platform picks the other one
    root2 = tmp_path / "other"
    proc = _pb("--root", str(root2), "pull", "--platform", f"linux/{other_arch}",
               f"{registry.host}/{repo}:1")
    assert proc.returncode == 0, proc.stderr
    got = get_image(Store(root2), index_digest, Platform("linux", other_arch))
    assert got.manifest_digest == other_digest and got.config.architecture == other_arch
    # a build's resolver asked for a platform the stored index lacks fetches that one
    from builder.api import ImageResolver
    from builder.graph import Platform as PlanPlatform

    resolver = ImageResolver(Store(root), "missing", ENV)
    got = resolver(f"{registry.host}/{repo}:1", PlanPlatform("linux", other_arch)).image
    assert got.manifest_digest == other_digest
    assert Store(root).has_blob(host_man.digest)             # the host's is still there
    with pytest.raises(ImageError, match="no manifest for linux/arm64"):
        ImageResolver(Store(root2), "never", ENV)(f"{registry.host}/{repo}:1",
                                                  PlanPlatform("linux", "arm64"))
    # a platform the index lacks: a clear error, exit 5
    proc = _pb("--root", str(root2), "pull", "--platform", "windows/arm",
               f"{registry.host}/{repo}:1")
    assert proc.returncode == 5
    assert "has no image for windows/arm" in proc.stderr and other_arch in proc.stderr


def test_basic_auth_with_credentials_from_the_auth_file(
        auth_registry: RunningRegistry, image_root: Path, tmp_path: Path) -> None:
    dest = f"{auth_registry.host}/private:1"
    denied = _pb("push", "--root", str(image_root), "localhost/bb:1", dest)
    assert denied.returncode == 5, denied.stderr
    assert "HTTP 401" in denied.stderr and auth_registry.host in denied.stderr
    assert "~/.docker/config.json" in denied.stderr and "Traceback" not in denied.stderr
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {auth_registry.host: {
        "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}))
    env = {"REGISTRY_AUTH_FILE": str(auth)}
    pushed = _pb("push", "--root", str(image_root), "localhost/bb:1", dest, env=env)
    assert pushed.returncode == 0, pushed.stderr
    root = tmp_path / "fresh"
    anon = _pb("--root", str(root), "pull", dest)
    assert anon.returncode == 5 and "HTTP 401" in anon.stderr
    assert Store(root).images() == {}
    pulled = _pb("--root", str(root), "pull", dest, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.split()[1] == pushed.stdout.split()[1]
    auth.write_text(json.dumps({"auths": {auth_registry.host: {
        "auth": base64.b64encode(f"{USER}:wrong".encode()).decode()}}}))
    wrong = _pb("--root", str(tmp_path / "w"), "pull", dest, env=env)
    assert wrong.returncode == 5 and "were refused" in wrong.stderr


def test_unknown_image_and_unreachable_registry(registry: RunningRegistry,
                                                tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = _pb("--root", str(root), "pull", f"{registry.host}/nothing/here:1")
    assert proc.returncode == 5
    assert "MANIFEST_UNKNOWN" in proc.stderr or "NAME_UNKNOWN" in proc.stderr
    assert registry.host in proc.stderr and "nothing/here" in proc.stderr
    assert "Traceback" not in proc.stderr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _pb("--root", str(root), "pull", f"127.0.0.1:{port}/x:1")
    assert proc.returncode == 5
    assert f"127.0.0.1:{port}" in proc.stderr and "connection refused" in proc.stderr
    assert "hint:" in proc.stderr
    assert Store(root).images() == {}


def test_a_blob_not_matching_its_digest_is_refused_and_nothing_is_stored(
        tmp_path: Path) -> None:
    """A hostile registry: the manifest and config are honest, the layer's bytes are not."""
    good_layer = b"\x1f\x8b" + b"pretend layer" * 10
    bad_layer = b"\x1f\x8b" + b"tampered layr" * 10          # same size, other bytes
    cfg = ImageConfig(diff_ids=(Digest.of_bytes(b"x"),)).to_bytes()
    layer = Descriptor(OCI_LAYER_GZIP, Digest.of_bytes(good_layer), len(good_layer))
    man = Manifest(Descriptor(OCI_CONFIG, Digest.of_bytes(cfg), len(cfg)), (layer,)).to_bytes()
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/evil/manifests/1", lambda req: (
            200, {"Content-Type": OCI_MANIFEST}, man))
        fake.route("GET", f"/v2/evil/blobs/{Digest.of_bytes(cfg)}", lambda req: (200, {}, cfg))
        fake.route("GET", f"/v2/evil/blobs/{layer.digest}", lambda req: (200, {}, bad_layer))
        root = tmp_path / "root"
        proc = _pb("--root", str(root), "pull", f"{fake.host}/evil:1")
    assert proc.returncode == 5, proc.stderr
    assert "digest mismatch" in proc.stderr and layer.digest.short in proc.stderr
    assert fake.host in proc.stderr and "Traceback" not in proc.stderr
    store = Store(root)
    assert store.images() == {}
    assert not store.has_blob(layer.digest)
    assert not store.has_blob(Digest.of_bytes(bad_layer))
    assert not store.has_blob(Digest.of_bytes(man))
    _no_temp_files(root)


def test_build_pulls_its_base_on_demand_and_pushes_the_result(
        registry: RunningRegistry, tmp_path: Path) -> None:
    from tests.integration.build_helpers import busybox_store

    need("skopeo")
    src = busybox_store(tmp_path / "src")
    base = f"{registry.host}/base:1"
    proc = _pb("push", "--root", str(src.root), "localhost/pybuild/busybox:latest", base)
    assert proc.returncode == 0, proc.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo pulled-and-built > /msg\n"
                                    'CMD ["cat", "/msg"]\n')
    root = tmp_path / "root"
    never = _pb("--root", str(root), "build", "--pull=never", "-t", "x:1", str(ctx))
    assert never.returncode == 1 and "--pull=never" in never.stderr
    app = f"{registry.host}/app:1"
    meta = tmp_path / "meta.json"
    built = _pb("--root", str(root), "build", "--progress=plain", "--push", "-t", app,
                "--metadata-file", str(meta), str(ctx))
    assert built.returncode == 0, built.stderr
    assert f"pulling {base}" in built.stderr and f"=> pushed {app}@sha256:" in built.stderr
    assert "mounted " in built.stderr            # the base layer, from the base's repository
    pushed_digest = built.stderr.split(f"=> pushed {app}@")[1].split()[0]
    assert json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{app}")
                      )["Digest"] == pushed_digest
    assert json.loads(meta.read_text())["containerimage.digest"] == pushed_digest
    # --pull=always fetches again (the registry is asked), and still builds from cache
    again = _pb("--root", str(root), "build", "--progress=plain", "--pull=always", "-t", app,
                str(ctx))
    assert again.returncode == 0 and f"pulling {base}" in again.stderr
    assert "CACHED" in again.stderr
    no_tag = _pb("--root", str(root), "build", "--push", str(ctx))
    assert no_tag.returncode == 2 and "--push needs a name" in no_tag.stderr
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman not installed: cannot run the pushed image")
    with tempfile.TemporaryDirectory(prefix="pbpod-") as short:
        # --tmpdir too: podman's default (/run/libpod) is shared with every other podman
        # on the machine, and a concurrent `system reset` removes it.
        cmd = [podman, "--root", f"{short}/root", "--runroot", f"{short}/run",
               "--tmpdir", f"{short}/tmp"]
        run = subprocess.run([*cmd, "--runtime", "runc", "run", "--rm", "--network", "none",
                              "--tls-verify=false", "--ulimit", "nofile=20000:20000",
                              "--ulimit", "nproc=4096:4096", app],
                             capture_output=True, text=True, timeout=300)
        subprocess.run([*cmd, "system", "reset", "-f"], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "pulled-and-built"


def test_docker_schema2_images_pull(registry: RunningRegistry, image_root: Path,
                                    tmp_path: Path) -> None:
    """skopeo converts to a Docker schema 2 manifest (and Docker layer media types)."""
    need("skopeo")
    store = Store(image_root)
    digest = store.get_image("localhost/bb:1")
    assert digest is not None
    layout_dir = tmp_path / "layout"
    export(store, digest, parse(f"oci-layout://{layout_dir}:v1"))
    dest = f"docker://{registry.host}/v2s2:1"
    skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{layout_dir}:v1", dest)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", dest))
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    root = tmp_path / "fresh"
    proc = _pb("--root", str(root), "pull", f"{registry.host}/v2s2:1")
    assert proc.returncode == 0, proc.stderr
    img = get_image(Store(root), Store(root).get_image(f"{registry.host}/v2s2:1"))  # type: ignore[arg-type]
    assert img.manifest.media_type == raw["mediaType"]
    assert img.id == get_image(store, digest).id
    # and it pushes back as OCI with the digest `save` would give
    pushed = _pb("--root", str(root), "push", f"{registry.host}/v2s2:1",
                 f"{registry.host}/v2s2-again:1")
    assert pushed.returncode == 0, pushed.stderr
    archive = tmp_path / "a.tar"
    assert _pb("--root", str(root), "save", "-o", str(archive),
               f"{registry.host}/v2s2:1").returncode == 0
    assert json.loads(skopeo("inspect", f"oci-archive:{archive}"))["Digest"] == \
        pushed.stdout.split()[1]


def test_foreign_layers_are_refused(tmp_path: Path) -> None:
    cfg = ImageConfig(diff_ids=(Digest.of_bytes(b"x"),)).to_bytes()
    foreign = Descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                         Digest.of_bytes(b"win"), 3, urls=("https://example.invalid/l",))
    man = Manifest(Descriptor(OCI_CONFIG, Digest.of_bytes(cfg), len(cfg)), (foreign,)).to_bytes()
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/win/manifests/1", lambda req: (
            200, {"Content-Type": OCI_MANIFEST}, man))
        proc = _pb("--root", str(tmp_path / "root"), "pull", f"{fake.host}/win:1")
        assert not any("/blobs/" in s.path for s in fake.seen)
    assert proc.returncode == 5 and "foreign (non-distributable) layer" in proc.stderr
    assert Store(tmp_path / "root").images() == {}


def test_tls_by_default_and_the_insecure_registries_list(tmp_path: Path) -> None:
    """127.0.0.2 is a loopback address but not one of the names pybuild trusts with plain
    HTTP: without PYBUILD_INSECURE_REGISTRIES it speaks TLS (and fails against a plain-HTTP
    server, saying what to do); listed, it speaks HTTP."""
    with serve(FakeServer(), address="127.0.0.2") as fake:
        fake.route("GET", "/v2/x/manifests/1", lambda req: (
            404, {"Content-Type": "application/json"},
            b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'))
        root = str(tmp_path / "root")
        tls = _pb("--root", root, "pull", f"{fake.host}/x:1")
        assert tls.returncode == 5 and "TLS failed" in tls.stderr
        assert "PYBUILD_INSECURE_REGISTRIES" in tls.stderr
        plain = _pb("--root", root, "pull", f"{fake.host}/x:1",
                    env={"PYBUILD_INSECURE_REGISTRIES": f"other:1,{fake.host}"})
        assert plain.returncode == 5 and "MANIFEST_UNKNOWN: manifest unknown" in plain.stderr


def test_a_layer_not_matching_the_configs_diff_id_is_refused(tmp_path: Path) -> None:
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    layer_bytes = gzip.compress(buf.getvalue(), mtime=0)
    cfg = ImageConfig(diff_ids=(Digest.of_bytes(b"not the tar"),)).to_bytes()
    layer = Descriptor(OCI_LAYER_GZIP, Digest.of_bytes(layer_bytes), len(layer_bytes))
    man = Manifest(Descriptor(OCI_CONFIG, Digest.of_bytes(cfg), len(cfg)), (layer,)).to_bytes()
    with serve(FakeServer()) as fake:
        fake.route("GET", "/v2/liar/manifests/1", lambda req: (
            200, {"Content-Type": OCI_MANIFEST}, man))
        fake.route("GET", f"/v2/liar/blobs/{Digest.of_bytes(cfg)}", lambda req: (200, {}, cfg))
        fake.route("GET", f"/v2/liar/blobs/{layer.digest}",
                   lambda req: (200, {}, layer_bytes))
        root = tmp_path / "root"
        proc = _pb("--root", str(root), "pull", f"{fake.host}/liar:1")
    assert proc.returncode == 5, proc.stderr
    assert "decompresses to" in proc.stderr and "image config says" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert Store(root).images() == {}
    assert not Store(root).has_blob(Digest.of_bytes(man))
