"""`--secret` and `--ssh` values read as buildx reads them (builder.executor.secrets)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.executor.secrets import SecretSource, parse_secret, parse_ssh


@pytest.mark.parametrize(("spec", "environ", "want"), [
    ("id=a,src=/f", {}, SecretSource("a", path="/f")),
    ("id=a,source=/f", {}, SecretSource("a", path="/f")),
    ("id=a,env=VAR", {}, SecretSource("a", env="VAR")),
    ("env=KUBECONFIG", {}, SecretSource("KUBECONFIG", env="KUBECONFIG")),
    ("type=env,id=a,src=VAR", {}, SecretSource("a", env="VAR")),
    ("type=file,id=a,src=/f", {}, SecretSource("a", path="/f")),
    ("id=API_TOKEN", {"API_TOKEN": "x"}, SecretSource("API_TOKEN", env="API_TOKEN")),
    ("id=token.txt", {}, SecretSource("token.txt", path="token.txt")),
])
def test_secret_forms(spec: str, environ: dict[str, str], want: SecretSource) -> None:
    assert parse_secret(spec, environ) == want


@pytest.mark.parametrize(("spec", "message"), [
    ("src=/f", "secret ID missing"),
    ("id=a,src=/f,env=V", "not both"),
    ("id=a,type=ssh", 'unsupported secret type "ssh"'),
    ("id=a,what=1", "unexpected key 'what'"),
    ("id", "must be a key=value pair"),
])
def test_bad_secrets(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_secret(spec, {})


def test_secret_values_are_read_on_use(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"v\n")
    assert SecretSource("a", path=str(tmp_path / "f")).read({}) == b"v\n"
    assert SecretSource("a", env="V").read({"V": "x"}) == b"x"
    assert SecretSource("a", env="V").read({}) is None
    with pytest.raises(OSError):
        SecretSource("a", path=str(tmp_path / "missing")).read({})


def test_ssh_takes_agent_sockets_only(tmp_path: Path) -> None:
    sock = tmp_path / "agent"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    try:
        assert parse_ssh(f"default={sock}", {}) == ("default", str(sock))
        assert parse_ssh("gh", {"SSH_AUTH_SOCK": str(sock)}) == ("gh", str(sock))
    finally:
        server.close()
    (tmp_path / "id_ed25519").write_text("key")
    with pytest.raises(UsageError, match="not an agent socket"):
        parse_ssh(f"default={tmp_path / 'id_ed25519'}", {})
    with pytest.raises(UsageError, match="SSH_AUTH_SOCK is not set"):
        parse_ssh("default", {})
