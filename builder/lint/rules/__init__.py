"""Every lint rule, registered on import: hadolint's DL rules, BuildKit's build checks and our
stage-aware PB rules."""
