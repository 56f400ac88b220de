"""RUN --mount parsing as BuildKit's ParseMount."""

from __future__ import annotations

import pytest

from builder.frontend.mounts import MountProblem, parse_mount


def _p(value: str, env: dict[str, str] | None = None):
    return parse_mount(value, lambda w: w.replace("$X", (env or {}).get("X", "")))


def test_defaults_per_type() -> None:
    bind = _p("target=/src")
    assert (bind.type, bind.readonly) == ("bind", True)
    cache = _p("type=cache,target=/c")
    assert (cache.readonly, cache.sharing) == (False, "shared")
    tmp = _p("type=tmpfs,target=/t,size=64m")
    assert (tmp.readonly, tmp.size) == (False, 64 << 20)
    secret = _p("type=secret,id=tok")
    assert (secret.target, secret.readonly) == ("/run/secrets/tok", True)
    ssh = _p("type=ssh,required")
    assert (ssh.id, ssh.target, ssh.required) == ("default", "/run/buildkit/ssh_agent.0", True)


def test_aliases_flags_and_expansion() -> None:
    m = _p("type=cache,dst=/c,from=$X,src=/s,rw=false,mode=0700,uid=1,gid=2,sharing=LOCKED",
           {"X": "builder"})
    assert (m.target, m.from_, m.source, m.readonly) == ("/c", "builder", "/s", True)
    assert (m.mode, m.uid, m.gid, m.sharing) == (0o700, 1, 2, "locked")
    assert _p('"type=bind","target=/a b"').target == "/a b"  # CSV quoting


@pytest.mark.parametrize("value,message", [
    ("type=nfs,target=/x", 'unsupported mount type "nfs"'),
    ("target=/x,bogus=1", "unexpected key 'bogus'"),
    ("target=/x,required", "unexpected key 'required' for mount type 'bind'"),
    ("type=cache,target=/x,sharing=maybe", 'unsupported sharing value "maybe"'),
    ("target=/x,sharing=locked", "invalid cache sharing set for bind mount"),
    ("target=/x,mode=0755", 'mode not allowed for "bind" type mounts'),
    ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
    ("type=secret", "invalid secret mount"),
    ("type=secret,id=a,from=b", "secret mount should not have a from"),
    ("target=/x,ro=perhaps", "invalid value for ro: perhaps"),
    ("target=/x,justaword", "invalid field 'justaword'"),
])
def test_errors(value: str, message: str) -> None:
    with pytest.raises(MountProblem, match=message.replace("(", r"\(")):
        _p(value)
