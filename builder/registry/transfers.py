"""Blob transfers run side by side (pull's downloads, push's uploads), stopping at the first
failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_all(jobs: int, work: Callable[[T], R], items: Sequence[T],
            done: Callable[[T, R], None]) -> None:
    """Run `work` on every item, `jobs` at a time, and report each success to `done` in item
    order. The first failure (or Ctrl-C) cancels the transfers not started yet; those running
    finish (their temp files go), then the first failure is raised."""
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items)))) as pool:
        futures = [pool.submit(work, item) for item in items]
        errors: list[BaseException] = []
        try:
            for fut, item in zip(futures, items, strict=True):
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is not None:
                    errors.append(exc)
                    _cancel(futures)    # the transfer has failed: start no more
                else:
                    done(item, fut.result())
        except BaseException:           # Ctrl-C: leaving the pool waits for what runs only
            _cancel(futures)
            raise
    if errors:
        raise errors[0]


def _cancel(futures: Sequence[Future[R]]) -> None:
    for f in futures:
        f.cancel()
