"""Every lint rule, registered on import: hadolint's DL rules, BuildKit's build checks and our
stage-aware PB rules."""

from builder.lint.rules import buildkit, dl_instructions, dl_labels, dl_run, stages  # noqa: F401
