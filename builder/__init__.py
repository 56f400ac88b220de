"""pybuild: a daemonless Dockerfile compiler (parse → plan → build → export, plus lint and run)."""

__version__ = "0.1.0"
