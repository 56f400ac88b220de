"""Cache scenarios on real builds (root sandbox): what re-runs and what stays cached."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration.build_helpers import busybox_store, run_build

DOCKERFILE = """\
FROM localhost/pybuild/busybox:latest
LABEL stage=one
RUN echo base > /base.txt
COPY app/ /app/
RUN cat /app/main.sh > /copied.txt
COPY conf.txt /etc/conf.txt
ARG LATE=a
RUN echo "$LATE" > /late.txt
CMD ["sh", "/app/main.sh"]
"""


@pytest.fixture
def setup(tmp_path: Path):
    store = busybox_store(tmp_path)
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "main.sh").write_text("echo main\n")
    (ctx / "conf.txt").write_text("conf\n")
    (ctx / "ignored").mkdir()
    (ctx / "ignored" / "big.bin").write_text("x" * 1000)
    (ctx / ".dockerignore").write_text("ignored\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    first = run_build(store, ctx)
    assert len(first.ran) == 5 and not first.cached
    return store, ctx, first


def test_second_build_is_all_cached(setup) -> None:
    store, ctx, first = setup
    again = run_build(store, ctx)
    assert again.ran == [] and len(again.cached) == 5
    assert again.result.config_digest == first.result.config_digest


def test_touch_without_change_is_all_cached(setup) -> None:
    store, ctx, first = setup
    for p in ctx.rglob("*"):
        os.utime(p, (1_000_000, 1_000_000))
    assert run_build(store, ctx).ran == []


def test_fresh_copy_of_the_context_hits_the_cache(setup, tmp_path: Path) -> None:
    store, ctx, first = setup
    clone = tmp_path / "clone"
    shutil.copytree(ctx, clone)  # new inodes, new ctimes, same content
    again = run_build(store, clone)
    assert again.ran == []
    assert again.result.config_digest == first.result.config_digest


def test_changing_one_file_reruns_only_its_copy_and_what_follows(setup) -> None:
    store, ctx, _ = setup
    (ctx / "conf.txt").write_text("conf v2\n")
    again = run_build(store, ctx)
    assert [n.split("] ")[1] for n in again.ran] == [
        "COPY conf.txt /etc/conf.txt", 'RUN echo "$LATE" > /late.txt']


def test_changing_an_ignored_file_is_all_cached(setup) -> None:
    store, ctx, _ = setup
    (ctx / "ignored" / "big.bin").write_text("y" * 2000)
    (ctx / "ignored" / "new.bin").write_text("new")
    assert run_build(store, ctx).ran == []


def test_changing_a_label_reruns_no_run(setup) -> None:
    store, ctx, first = setup
    again = run_build(store, ctx, DOCKERFILE.replace("stage=one", "stage=two"))
    assert again.ran == []
    assert again.result.config_digest != first.result.config_digest


def test_build_arg_used_late_reruns_only_from_there(setup) -> None:
    store, ctx, _ = setup
    again = run_build(store, ctx, build_args=(("LATE", "b"),))
    assert [n.split("] ")[1] for n in again.ran] == ['RUN echo "$LATE" > /late.txt']


def test_no_cache_reruns_everything(setup) -> None:
    store, ctx, _ = setup
    assert len(run_build(store, ctx, no_cache=True).ran) == 5
