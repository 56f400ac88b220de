"""The build record's request key changes with every input a build depends on besides the
context and the base images (which `still_valid` re-checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.buildstamp import request_key


def _key(ctx: Path, **over: Any) -> str:
    kw: dict[str, Any] = dict(dockerfile_text=b"FROM scratch\n", dockerfile_path=None,
                              context=str(ctx), build_args=(("A", "1"), ("B", None)),
                              environ={"B": "env"}, target=None, labels=(),
                              source_date_epoch=None, network="default")
    kw.update(over)
    return request_key(**kw)


def test_every_request_input_changes_the_key(tmp_path: Path) -> None:
    base = _key(tmp_path)
    assert _key(tmp_path) == base
    assert _key(tmp_path, network="host") == base  # default is host
    variants = [
        _key(tmp_path, dockerfile_text=b"FROM scratch\n\n"),
        _key(tmp_path, build_args=(("A", "2"), ("B", None))),
        _key(tmp_path, environ={"B": "other"}),          # bare --build-arg B reads $B
        _key(tmp_path, environ={}),
        _key(tmp_path, target="t"),
        _key(tmp_path, labels=(("k", "v"),)),
        _key(tmp_path, source_date_epoch=0),
        _key(tmp_path, network="none"),
    ]
    assert len({base, *variants}) == len(variants) + 1
    (tmp_path / ".dockerignore").write_text("*.log\n")
    with_ignore = _key(tmp_path)
    assert with_ignore != base
    (tmp_path / "app.Dockerfile.dockerignore").write_text("x\n")
    df = str(tmp_path / "app.Dockerfile")
    assert _key(tmp_path, dockerfile_path=df) != _key(tmp_path)
