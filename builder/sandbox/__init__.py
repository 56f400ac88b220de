"""The sandbox: runs one process in Linux namespaces over a layered rootfs (DESIGN.md §5).

Public interface (everything else in this package is private):

    detect() -> ModeReport                  which rung of the ladder this machine allows, and why
    run(spec, *, stdin=, stdout=, stderr=) -> ExecResult       run to completion
    start(spec, *, stdin=, stdout=, stderr=) -> Process        run in the background
    changes(spec, result) -> tuple[oci.layers.Change, ...]     the step's change set
    id_maps() -> (uid_map, gid_map)         how rootless sandboxes map ids (for the snapshot)
    remove_tree(path)                       remove an upper/work dir whoever owns its files
    SandboxError                            the process could not be set up
    SandboxUnavailable                      no sandbox mode here (exit code 4, names the fix)

stdout/stderr accept a file descriptor (int), a callback receiving each output line as bytes
(called in the thread that waits, line by line as the process writes them, the last line
possibly without a newline), or None to inherit the caller's descriptor. stdin accepts a file
descriptor, bytes (fed then closed) or None (/dev/null).
"""

from __future__ import annotations

from builder.sandbox.mode import Mode, ModeReport, detect
from builder.sandbox.plan import Output, SandboxError, SandboxUnavailable
from builder.sandbox.process import Process
from builder.sandbox.runner import changes, id_maps, remove_tree, run, start
from builder.sandbox.spec import ExecResult, IdMap, Mount, SandboxSpec

__all__ = [
    "ExecResult",
    "IdMap",
    "Mode",
    "ModeReport",
    "Mount",
    "Output",
    "Process",
    "SandboxError",
    "SandboxSpec",
    "SandboxUnavailable",
    "changes",
    "detect",
    "id_maps",
    "remove_tree",
    "run",
    "start",
]
