"""`--cache-to` / `--cache-from` values: buildx syntax, type=local only, clear errors."""

from __future__ import annotations

import pytest

from builder.cache import CacheSpec, parse_cache_spec
from builder.errors import UsageError
from builder.oci.model import Compression


def test_cache_to_defaults_follow_buildx() -> None:
    spec = parse_cache_spec("type=local,dest=/tmp/c", "to")
    assert spec == CacheSpec("to", "local", "/tmp/c", "min", Compression.ZSTD, "latest", False)
    assert spec.describe() == "type=local,dest=/tmp/c"


def test_cache_to_takes_every_attribute() -> None:
    spec = parse_cache_spec(
        "type=local,dest=d,mode=max,compression=gzip,tag=main,ignore-error=true", "to")
    assert (spec.mode, spec.compression, spec.tag, spec.ignore_error) == \
        ("max", Compression.GZIP, "main", True)
    assert parse_cache_spec("type=local,dest=d,compression=uncompressed", "to").compression \
        is Compression.NONE


def test_buildx_switches_for_what_we_always_do_are_accepted() -> None:
    spec = parse_cache_spec("type=local,dest=d,oci-mediatypes=true,image-manifest=true", "to")
    assert spec.path == "d"


def test_cache_from_reads_src_and_tag() -> None:
    spec = parse_cache_spec("type=local,src=/c,tag=pr-7", "from")
    assert (spec.path, spec.tag, spec.describe()) == ("/c", "pr-7", "type=local,src=/c")


@pytest.mark.parametrize("kind", ["registry", "inline", "gha", "s3"])
def test_later_backends_are_refused_naming_what_is_supported(kind: str) -> None:
    with pytest.raises(UsageError, match=f"type={kind} is not supported yet.*type=local"):
        parse_cache_spec(f"type={kind},ref=x", "to")


@pytest.mark.parametrize(("text", "direction", "match"), [
    ("user/app:cache", "from", "registry cache, which is not supported"),
    ("type=local", "to", "needs dest=DIR"),
    ("type=local,dest=d", "from", "unknown attribute 'dest'"),
    ("type=local,src=d", "to", "unknown attribute 'src'"),
    ("type=local,dest=d,mode=all", "to", "expected min or max"),
    ("type=local,dest=d,compression=lz4", "to", "expected zstd, gzip"),
    ("type=local,dest=d,tag=a/b", "to", "not a valid tag"),
    ("type=local,dest=d,ignore-error=maybe", "to", "expected true or false"),
    ("type=nfs,dest=d", "to", "unknown cache type 'nfs'"),
    ("type=local,dest=d,oci-mediatypes=false", "to", "only true is accepted"),
    ("type=local,dest=d,compression-level=3", "to", "unknown attribute 'compression-level'"),
    ("type=local,dest", "to", "KEY=VALUE"),
])
def test_bad_values_are_usage_errors(text: str, direction: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_cache_spec(text, direction)
