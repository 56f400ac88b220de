"""Helpers for build integration tests: a store holding a busybox base image made at test
time, in-process builds that record which steps ran, and image inspection helpers."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from builder import events
from builder.api import BuildOptions, BuildResult, build
from builder.export import OutputSpec
from builder.oci.image import import_rootfs
from builder.store import Store
from tests.integration.sandbox_rootfs import make_rootfs, skip_reason_root

BASE = "localhost/pybuild/busybox:latest"


def need_root_sandbox() -> None:
    reason = skip_reason_root()
    if reason:
        pytest.skip(reason)


def busybox_store(tmp: Path) -> Store:
    """A fresh store with `localhost/pybuild/busybox:latest` (busybox-static + applets)."""
    need_root_sandbox()
    store = Store(tmp / "store")
    rootfs = make_rootfs(tmp / "busybox-rootfs")
    desc = import_rootfs(store, rootfs, source_date_epoch=0)
    store.set_image("localhost/pybuild/busybox:latest", desc.digest)
    shutil.rmtree(rootfs)
    return store


@dataclass
class Run:
    """One in-process build: its result and what happened to each named step."""

    result: BuildResult
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    events: list[events.Event] = field(default_factory=list)

    def ran_any(self, text: str) -> bool:
        return any(text in n for n in self.ran)


def run_build(store: Store, context: Path, dockerfile: str | None = None, **kw: object) -> Run:
    """Build `context` (its Dockerfile, or `dockerfile` text written to it) in-process."""
    if dockerfile is not None:
        (context / "Dockerfile").write_text(dockerfile)
    seen: list[events.Event] = []
    opts = BuildOptions(context=context, jobs=int(kw.pop("jobs", 2)),  # type: ignore[arg-type]
                        **kw)  # type: ignore[arg-type]
    result = build(store, opts, seen.append)
    run = Run(result, events=seen)
    for ev in seen:
        if isinstance(ev, events.StepFinished) and not ev.name.startswith("[internal]") \
                and "] FROM " not in ev.name:
            run.ran.append(ev.name)
        elif isinstance(ev, events.StepCached):
            run.cached.append(ev.name)
        elif isinstance(ev, events.StepLog):
            run.logs.append(ev.line)
    return run


def export_layout(store: Store, result: BuildResult, dest: Path, **kw: object) -> Path:
    from builder.digest import Digest
    from builder.export import write

    write(store, Digest.parse(result.manifest_digest), OutputSpec("oci", str(dest), tar=False),
          names=("localhost/test/image:latest",), **kw)  # type: ignore[arg-type]
    return dest


def umoci_unpack(layout: Path, dest: Path) -> Path:
    """Unpack with the reference tool; returns the rootfs directory."""
    if shutil.which("umoci") is None:
        pytest.skip("umoci not installed (Debian package umoci)")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(dest)], check=True,
                   capture_output=True)
    return dest / "rootfs"


def manifest_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])
