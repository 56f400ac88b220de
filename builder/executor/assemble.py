"""The final image of a stage: layer descriptors, config (with history as BuildKit writes it)
and manifest, committed to the store.

History: the base image's entries are kept verbatim; then one entry per instruction of the
stage (`created_by` as the front end wrote it), with `empty_layer: true` for instructions that
added no layer (config-only ones, a RUN that changed nothing, a WORKDIR that existed). An
instruction that produced several layers (COPY with files and heredocs) gets one entry per
layer, so the number of non-empty entries always equals the number of layers (image-spec
config.md). With SOURCE_DATE_EPOCH every timestamp this build writes is that time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from builder.digest import Digest
from builder.errors import ImageError
from builder.executor.worker import StepResult
from builder.graph import BuildPlan, HistoryEntry, Stage, StepId
from builder.oci.image import commit_image, rfc3339
from builder.oci.model import ContainerConfig, Descriptor, History, ImageConfig, Platform
from builder.store import Store

CREATED_ANNOTATION = "org.opencontainers.image.created"


def _chain(plan: BuildPlan, stage: Stage) -> list[StepId]:
    """The filesystem steps from the stage's base image up to its root, in order."""
    out: list[StepId] = []
    sid: StepId | None = stage.root
    while sid:
        step = plan.steps[sid]
        if step.kind == "image":
            break
        out.append(sid)
        sid = getattr(step, "root", None)
    out.reverse()
    return out


def history(plan: BuildPlan, stage: Stage, results: Mapping[StepId, StepResult],
            created: str) -> list[History]:
    """The stage's own history entries (base image excluded), one per layer or config change."""
    chain = _chain(plan, stage)
    pos = 0
    out: list[History] = []
    entries: Sequence[HistoryEntry] = stage.history
    for entry in entries:
        if entry.step is None or entry.step not in chain[pos:]:
            out.append(History(created=created, created_by=entry.created_by,
                               comment=entry.comment, empty_layer=True))
            continue
        end = chain.index(entry.step, pos)
        produced = [s for s in chain[pos:end + 1] if results[s].diff is not None]
        pos = end + 1
        if not produced:
            out.append(History(created=created, created_by=entry.created_by,
                               comment=entry.comment, empty_layer=True))
        for _ in produced:
            out.append(History(created=created, created_by=entry.created_by,
                               comment=entry.comment))
    for s in chain[pos:]:
        if results[s].diff is not None:  # steps no history entry names (ONBUILD triggers)
            out.append(History(created=created, created_by=f"pybuild {plan.steps[s].kind}",
                               comment="buildkit.dockerfile.v0"))
    return out


def commit_stage(store: Store, plan: BuildPlan, stage: Stage,
                 results: Mapping[StepId, StepResult], *,
                 source_date_epoch: int | None = None,
                 extra_labels: Mapping[str, str] | None = None,
                 created: str | None = None) -> Descriptor:
    """Write the stage's image (config + manifest) into the store; returns the manifest
    descriptor. Base layers are referenced as they are stored (never rewritten); the layers
    this build made are referenced in the store's fast form (export converts)."""
    final = results[stage.root]
    if created is None:
        created = rfc3339(source_date_epoch if source_date_epoch is not None else time.time())
    base = final.base
    base_layers: list[Descriptor] = []
    base_history: tuple[History, ...] = ()
    platform = Platform.host()
    if base is not None:
        base_layers = list(base.image.manifest.layers)
        base_history = base.image.config.history
        platform = base.image.config.platform
    layers: list[Descriptor] = []
    for i, diff_id in enumerate(final.layers):
        if i < len(base_layers):
            layers.append(base_layers[i])
            continue
        rec = store.get_layer(diff_id)
        if rec is None:
            raise ImageError(f"layer {diff_id} of the build is missing from the store",
                             hint="run the build again (with --no-cache if it persists)")
        layers.append(rec.best_for_reading())
    cfg = stage.config
    labels = dict(cfg.labels)
    labels.update(extra_labels or {})
    container = ContainerConfig(
        user=cfg.user, exposed_ports=tuple(cfg.exposed_ports), env=tuple(cfg.env),
        entrypoint=cfg.entrypoint, cmd=cfg.cmd, volumes=tuple(cfg.volumes),
        working_dir=cfg.working_dir, labels=labels, stop_signal=cfg.stop_signal,
        healthcheck=cfg.healthcheck.to_oci() if cfg.healthcheck else None,
        shell=cfg.shell, on_build=tuple(cfg.on_build), args_escaped=cfg.args_escaped)
    hist = list(base_history) + history(plan, stage, results, created)
    if stage.platform is not None:
        platform = Platform(stage.platform.os, stage.platform.architecture,
                            stage.platform.variant)
    config = ImageConfig(architecture=platform.architecture, os=platform.os,
                         variant=platform.variant, created=created, author=stage.author,
                         config=container, diff_ids=tuple(Digest(d.hex) for d in final.layers),
                         history=tuple(hist))
    return commit_image(store, config, layers, {CREATED_ANNOTATION: created})
