"""What the caller tells the planner: build args, target, platforms, the base-image resolver."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from builder.graph import BaseImageInfo, Platform

Resolver = Callable[[str, "Platform | None"], "BaseImageInfo | None"]
"""Look up a base image's config by its expanded reference (and requested platform). Return None
when unknown: the planner then assumes an empty config (no Env, WorkingDir "/")."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOptions:
    """Inputs of `builder.frontend.plan`, all explicit so the planner stays pure.

    - `build_args`: `--build-arg` values in order; a value of None means `--build-arg K`
      without `=`, whose value is taken from `environ` (and dropped when absent there).
    - `environ`: the caller's environment for those bare build args (never os.environ read
      inside the planner).
    - `target`: stage name (case-insensitive) or index text; None = the last stage.
    - `build_platform` / `target_platform`: the host platform and the requested output
      platform (defaults to the build platform) for the automatic platform ARGs.
    - `resolver`: base image config lookup (network access is the caller's business).
    - `dockerignore`: the .dockerignore patterns already read (see dockerignore.read_ignore).
    - `parse`: `(text, path) -> Dockerfile`, used to parse a base image's ONBUILD triggers;
      None means `builder.syntax.parse`.
    Source lines for diagnostics come from the Dockerfile node's `text`.
    """

    build_args: tuple[tuple[str, str | None], ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    build_platform: Platform = Platform("linux", "amd64")
    target_platform: Platform | None = None
    resolver: Resolver | None = None
    dockerignore: tuple[str, ...] = ()
    parse: Callable[[str, str], object] | None = None
