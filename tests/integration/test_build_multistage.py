"""Multi-stage builds: independent stages run in parallel, COPY --from stages and images."""

from __future__ import annotations

from pathlib import Path

from builder import events
from builder.digest import Digest
from builder.export import OutputSpec, write
from tests.integration.build_helpers import busybox_store, run_build

DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest AS left
RUN sleep 1 && echo left > /left.txt

FROM localhost/pybuild/busybox:latest AS right
RUN sleep 1 && echo right > /right.txt

FROM localhost/pybuild/busybox:latest AS unused
RUN exit 1

FROM localhost/pybuild/busybox:latest
COPY --from=left /left.txt /out/
COPY --from=right /right.txt /out/
COPY --from=localhost/pybuild/busybox:latest /etc/passwd /out/passwd
RUN cat /out/left.txt /out/right.txt > /out/both.txt
"""


def test_independent_stages_run_in_parallel(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    run = run_build(store, ctx, DOCKERFILE, jobs=2)
    order = [(type(e).__name__, e.name) for e in run.events
             if isinstance(e, events.StepStarted | events.StepFinished) and "sleep" in e.name]
    # both sleeping RUNs started before either finished
    assert [k for k, _ in order[:2]] == ["StepStarted", "StepStarted"], order
    assert not any("exit 1" in n for n in run.ran)  # the unused stage is pruned
    out = tmp_path / "rootfs"
    write(store, Digest.parse(run.result.manifest_digest), OutputSpec("local", str(out)))
    assert (out / "out" / "both.txt").read_text() == "left\nright\n"
    assert (out / "out" / "passwd").read_text().startswith("root:")


def test_target_builds_only_that_stage(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    run = run_build(store, ctx, DOCKERFILE.replace("sleep 1 && ", ""), target="right")
    assert [n.split("] ")[1] for n in run.ran] == ["RUN echo right > /right.txt"]


def test_copy_from_merges_the_stage_layers(tmp_path: Path) -> None:
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    df = """\
FROM localhost/pybuild/busybox:latest AS src
RUN mkdir -p /d/sub /o && touch /d/a /d/b /d/sub/s /o/old && chmod 700 /d
RUN rm /d/a && touch /d/c && rm -rf /d/sub
RUN rm -rf /o && mkdir /o && touch /o/new && ln -s c /d/link
FROM localhost/pybuild/busybox:latest
COPY --from=src /d /copied/d
COPY --from=src /o /copied/o
COPY --from=src /d/link /copied/link-target
"""
    run = run_build(store, ctx, df)
    out = tmp_path / "rootfs"
    write(store, Digest.parse(run.result.manifest_digest), OutputSpec("local", str(out)))
    import os
    import stat

    assert sorted(os.listdir(out / "copied" / "d")) == ["b", "c", "link"]
    assert sorted(os.listdir(out / "copied" / "o")) == ["new"]
    assert stat.S_IMODE(os.stat(out / "copied" / "d").st_mode) == 0o700
    assert os.path.islink(out / "copied" / "d" / "link")


def test_a_failing_stage_stops_its_running_sibling(tmp_path: Path) -> None:
    import time

    import pytest

    from builder.errors import BuildFailed

    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    df = """\
FROM localhost/pybuild/busybox:latest AS slow
RUN sleep 30 && touch /done
FROM localhost/pybuild/busybox:latest AS broken
RUN sleep 0.5 && exit 7
FROM localhost/pybuild/busybox:latest
COPY --from=slow /done /done
COPY --from=broken /etc/passwd /x
"""
    t0 = time.monotonic()
    with pytest.raises(BuildFailed) as info:
        run_build(store, ctx, df, jobs=2)
    assert time.monotonic() - t0 < 20  # the 30 s sleep was killed, not waited for
    assert "exit code: 7" in info.value.message
