"""SandboxSpec → OCI runtime config; ExecResult conventions."""

from __future__ import annotations

from builder.sandbox import ExecResult, Mount, SandboxSpec
from builder.sandbox.ociconfig import DEFAULT_CAPS, runtime_config
from builder.sandbox.users import ExecUser


def test_runtime_config_mirrors_the_spec() -> None:
    spec = SandboxSpec(lowers=("/l",), argv=("sh", "-c", "x"), env=("A=1",), cwd="/w",
                       hostname="h", network="none", readonly_rootfs=True,
                       mounts=(Mount("/data", "bind", "/src", readonly=True),
                               Mount("/t", "tmpfs", options=("size=1m",))))
    cfg = runtime_config(spec, ExecUser(0, 0, (10,), "/root"), "/rootfs", "/h", None)
    proc = cfg["process"]
    assert proc["args"] == ["sh", "-c", "x"]
    assert proc["env"] == ["A=1", "HOME=/root"]
    assert proc["cwd"] == "/w"
    assert proc["user"] == {"uid": 0, "gid": 0, "additionalGids": [10]}
    assert proc["capabilities"]["bounding"] == list(DEFAULT_CAPS)
    assert cfg["root"] == {"path": "/rootfs", "readonly": True}
    assert cfg["hostname"] == "h"
    assert {"type": "network"} in cfg["linux"]["namespaces"]
    by_dest = {m["destination"]: m for m in cfg["mounts"]}
    assert by_dest["/data"]["options"] == ["rbind", "ro"]
    assert by_dest["/t"]["options"] == ["nosuid", "nodev", "size=1m"]
    assert "/etc/resolv.conf" not in by_dest


def test_host_network_shares_the_netns_and_gets_resolv_conf() -> None:
    spec = SandboxSpec(lowers=("/l",), argv=("true",), network="host", env=("HOME=/x",))
    cfg = runtime_config(spec, ExecUser(5, 5, (), "/home"), "/r", "/h", "/resolv")
    assert {"type": "network"} not in cfg["linux"]["namespaces"]
    assert cfg["process"]["env"] == ["HOME=/x"]
    assert cfg["process"]["capabilities"]["bounding"] == []
    assert any(m["destination"] == "/etc/resolv.conf" for m in cfg["mounts"])


def test_exec_result_ok() -> None:
    assert ExecResult(0).ok
    assert not ExecResult(137, signal=9).ok
