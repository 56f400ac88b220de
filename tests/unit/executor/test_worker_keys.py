"""Cache keys the worker computes for steps whose meaning depends on build-wide options."""

from __future__ import annotations

from pathlib import Path

from builder.executor.worker import SolveOptions, StepResult, Worker
from builder.graph import Exec, step_id
from builder.store import Store


def _key(tmp_path: Path, network: str, step: Exec) -> str:
    def no_images(*_a: object) -> object:
        raise AssertionError("no image is resolved for an Exec key")

    worker = Worker(Store(tmp_path / "store"),
                    SolveOptions(context_dir=tmp_path, resolve_image=no_images,  # type: ignore[arg-type]
                                 network=network))
    return worker.key(step_id(step), step, [StepResult("root-key")])


def test_build_network_is_part_of_a_default_network_run_key(tmp_path: Path) -> None:
    """`--network=none` and `--network=host` run `RUN curl …` differently (BuildKit puts the
    ExecOp's network mode in its cache key): one must never answer for the other."""
    step = Exec(root="r" * 64, argv=("/bin/sh", "-c", "wget -q http://example.com"))
    assert _key(tmp_path, "host", step) != _key(tmp_path, "none", step)


def test_explicit_run_network_ignores_the_build_default(tmp_path: Path) -> None:
    """`RUN --network=none` runs the same whatever the build's default is."""
    step = Exec(root="r" * 64, argv=("true",), network="none")
    assert _key(tmp_path, "host", step) == _key(tmp_path, "none", step)
