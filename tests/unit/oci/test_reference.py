"""Image reference parsing and Docker-style normalisation."""

from __future__ import annotations

import pytest

from builder.oci.reference import Transport, parse, parse_name

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "name", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
    ("ghcr.io/o/r/x:2", "ghcr.io/o/r/x:2", "ghcr.io/o/r/x:2"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app:t", "localhost:5000/app:t", "localhost:5000/app:t"),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}"),
])
def test_docker_normalisation(text: str, name: str, familiar: str):
    ref = parse_name(text)
    assert ref.name == name
    assert ref.familiar == familiar
    assert parse_name(ref.name) == ref            # the normal form is a fixed point


@pytest.mark.parametrize("bad", ["", "UPPER", "a b", "busybox:", "busybox:-x", "a//b",
                                 "busybox@sha256:123", ":tag", "x" * 300])
def test_invalid_names(bad: str):
    with pytest.raises(ValueError):
        parse_name(bad)


def test_file_transports():
    r = parse("oci-layout:///tmp/lay:v1")
    assert (r.transport, r.location, r.tag) == (Transport.OCI_LAYOUT, "/tmp/lay", "v1")
    r = parse("oci:rel/dir")
    assert (r.transport, r.location, r.tag) == (Transport.OCI_LAYOUT, "rel/dir", "")
    r = parse(f"oci-layout://./a:b/lay@{DIGEST}")
    assert (r.location, str(r.digest)) == ("./a:b/lay", DIGEST)
    r = parse("oci-archive:/tmp/x.tar")
    assert (r.transport, r.location, r.tag) == (Transport.OCI_ARCHIVE, "/tmp/x.tar", "")
    r = parse("docker-archive:/tmp/d.tar:busybox:1")
    assert (r.transport, r.location, r.name) == (Transport.DOCKER_ARCHIVE, "/tmp/d.tar",
                                                 "docker.io/library/busybox:1")
    assert str(r) == "docker-archive:/tmp/d.tar:docker.io/library/busybox:1"
    assert parse("docker-archive:/tmp/d.tar").path == ""
    assert parse("busybox").transport is Transport.NAME
