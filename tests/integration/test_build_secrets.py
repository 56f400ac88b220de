"""RUN --mount=type=secret and type=ssh on real builds: the secret is there for the RUN that
mounts it, never in a layer, never in the cache key; the agent socket is forwarded."""

from __future__ import annotations

import socket
import tarfile
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import BuildFailed
from builder.executor.secrets import SecretSource
from builder.oci.image import get_image
from builder.oci.layers import open_uncompressed
from tests.conftest import run_pybuild
from tests.integration.build_helpers import BASE, busybox_store, run_build


def _layer_names(store, manifest: str) -> set[str]:  # type: ignore[no-untyped-def]
    """Every path in every layer the build added on top of the base image."""
    img = get_image(store, Digest.parse(manifest))
    base = get_image(store, store.get_image(BASE)).config.diff_ids
    names: set[str] = set()
    for diff_id in img.config.diff_ids[len(base):]:
        with open_uncompressed(store, diff_id) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as tar:
            names |= {m.name for m in tar}
    return names


def test_secret_files_and_variables_reach_only_the_run(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "token").write_text("s3cr3t")
    secrets = (SecretSource("tok", path=str(tmp_path / "token")),
               SecretSource("api", env="API_TOKEN"))
    dockerfile = (f"FROM {BASE}\n"
                  "RUN --mount=type=secret,id=tok cat /run/secrets/tok && echo && "
                  "stat -c '%a %u' /run/secrets/tok && touch /made-by-run\n"
                  "RUN --mount=type=secret,id=api,env=API,target=/root/.cfg/api,mode=0440,"
                  "uid=1 echo \"env=$API\" && stat -c '%a %u' /root/.cfg/api\n"
                  "RUN --mount=type=secret,id=absent ls /run/secrets/absent || echo skipped\n")
    run = run_build(store, ctx, dockerfile, secrets=secrets,
                    environ={"API_TOKEN": "from-env"})
    assert "s3cr3t" in run.logs and "400 0" in run.logs, run.logs
    assert "env=from-env" in run.logs and "440 1" in run.logs, run.logs
    assert "skipped" in run.logs, run.logs
    names = _layer_names(store, run.result.manifest_digest)
    assert "made-by-run" in names
    assert not any("secrets" in n or n.startswith("root/.cfg") for n in names), names
    # another secret value is not another build: secrets are not part of the cache key
    (tmp_path / "token").write_text("rotated")
    again = run_build(store, ctx, dockerfile, secrets=secrets,
                      environ={"API_TOKEN": "other"})
    assert again.ran == [] and again.result.manifest_digest == run.result.manifest_digest


def test_a_required_secret_that_is_missing_fails_at_its_line(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, f"FROM {BASE}\n"
                  "RUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n")
    diag = info.value.diagnostics[0]
    assert diag.span is not None and diag.span.line == 2
    assert "secret npmrc not found" in diag.message and "--secret id=npmrc" in (diag.hint or "")


def test_ssh_agent_socket_is_forwarded(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    agent = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(agent))
    try:
        run = run_build(store, ctx, f"FROM {BASE}\n"
                        "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && "
                        "echo \"agent at $SSH_AUTH_SOCK\"\n",
                        ssh=(("default", str(agent)),))
    finally:
        server.close()
    assert "agent at /run/buildkit/ssh_agent.0" in run.logs, run.logs


def test_cli_secret_flags_are_checked_before_building(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    for flag, message in ((["--secret", "src=/x"], "secret ID missing"),
                          (["--secret", "id=a,kind=file"], "unexpected key 'kind'"),
                          (["--ssh", "default=/nonexistent/agent"], "cannot use")):
        proc = run_pybuild("--root", str(tmp_path / "root"), "build", *flag, str(ctx))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
