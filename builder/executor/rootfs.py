"""Root filesystems for the executor: overlay lower directories (one per layer, kept in the
store), flattened checkouts for `COPY --from` / bind mounts, and a read-only merged view of a
layer stack for the few lookups COPY and WORKDIR need (dest dirs, /etc/passwd, /etc/group).

Layer directories are in overlayfs' on-disk format (Documentation/filesystems/overlayfs.rst):
a deleted path is a character device 0:0, a replaced directory carries
`trusted.overlay.opaque=y`. A RUN step's upperdir already is one, so it is kept as the layer's
directory (no unpacking ever); a layer that only exists as a tarball (base images, layers
after `pybuild prune`) is unpacked once by the store's safe applier and its whiteouts are then
written in overlay form. Everything is regenerable: `prune` may delete any of it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

from builder.context import follow_links
from builder.digest import Digest
from builder.oci.image import checkout
from builder.oci.layers import apply_layer, open_uncompressed
from builder.store import Store

OPAQUE_XATTR = "trusted.overlay.opaque"


class _KeyLocks:
    """One threading.Lock per key, so two threads never unpack the same layer at once (the
    store's atomic rename already makes concurrent *processes* safe)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


_LOCKS = _KeyLocks()


def layer_dir_key(diff_id: Digest, copy: int = 0) -> str:
    return f"layer-{diff_id.hex}" + (f"-{copy}" if copy else "")


def layer_dir(store: Store, diff_id: Digest, copy: int = 0) -> Path:
    """The overlay lower directory of layer `diff_id`, unpacking it on first use (atomic).
    `copy` > 0 names an extra, separate unpacking: overlayfs refuses the same directory twice
    in one stack (ELOOP), and an image may hold the same layer at two positions."""
    key = layer_dir_key(diff_id, copy)
    path = store.rootfs_path(key)
    if path.is_dir():
        return path
    with _LOCKS.get(key):
        if path.is_dir():
            return path
        with store.new_rootfs(key) as tmp, open_uncompressed(store, diff_id) as plain:
            # whiteouts="overlay": the applier writes `.wh.` entries as 0:0 devices and opaque
            # xattrs through its own root-confined path resolution (a second pass with plain
            # path joins would follow a layer's symlinks out of the root).
            apply_layer(plain, tmp, name=diff_id.short, whiteouts="overlay")
    return path


def adopt_layer_dir(store: Store, diff_id: Digest, directory: Path) -> Path:
    """Make `directory` (an upperdir or a staged COPY tree on the store's filesystem, in
    overlay format) the layer directory of `diff_id`; if one exists already, `directory` is
    removed instead. Returns the layer directory."""
    key = layer_dir_key(diff_id)
    dest = store.rootfs_path(key)
    with _LOCKS.get(key):
        if dest.is_dir():
            _rmtree(directory)
            return dest
        try:
            os.rename(directory, dest)
        except OSError:
            _rmtree(directory)
    return dest


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def stack_dirs(store: Store, layers: Sequence[Digest]) -> list[Path]:
    """Overlay lower directories for a layer stack (base first), each directory used once."""
    seen: dict[Digest, int] = {}
    out = []
    for d in layers:
        n = seen.get(d, -1) + 1
        seen[d] = n
        out.append(layer_dir(store, d, n))
    return out


def flat_dir(store: Store, layers: Sequence[Digest]) -> Path:
    """A flattened checkout of the stack `layers` (base first), made once and kept in the
    store under its ChainID (for COPY --from and RUN --mount=from=, which read a whole
    filesystem). The store's `checkout` owns it."""
    return checkout(store, list(layers))


def empty_dir(store: Store) -> Path:
    """An empty directory usable as the single lower of a `FROM scratch` filesystem."""
    return checkout(store, [])


class LayerView:
    """Read-only lookups in the merged view of overlay lower directories (lowest first),
    with overlay's rules: whiteouts hide, opaque directories and non-directories hide what
    lies below them. Paths are relative to the root ('etc/passwd')."""

    def __init__(self, lowers: Sequence[Path]) -> None:
        self.lowers = tuple(lowers)

    def lookup(self, rel: str) -> Path | None:
        """The host path of the topmost entry at `rel` (symlinks not followed), or None."""
        parts = [p for p in rel.split("/") if p and p != "."]
        if not parts:
            return self.lowers[-1] if self.lowers else None
        for layer in reversed(self.lowers):
            cur = layer
            for i, comp in enumerate(parts):
                full = cur / comp
                try:
                    st = os.lstat(full)
                except (FileNotFoundError, NotADirectoryError):
                    break
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None
                if i == len(parts) - 1:
                    return full
                if not stat.S_ISDIR(st.st_mode):
                    return None
                if _is_opaque(full):
                    # Opaque: nothing below this layer shows through, so a miss is final.
                    sub = full.joinpath(*parts[i + 1:])
                    return sub if os.path.lexists(sub) and not _is_whiteout(sub) else None
                cur = full
        return None

    def layers_of(self, rel: str) -> list[Path]:
        """The host paths of directory `rel` in every layer whose content shows through at
        that path, TOPMOST FIRST (stops below an opaque directory, a whiteout or a
        non-directory). Merge them lowest first to get the merged directory."""
        parts = [p for p in rel.split("/") if p and p != "."]
        out: list[Path] = []
        for layer in reversed(self.lowers):
            cur, hides, found = layer, False, True
            for comp in parts:
                full = cur / comp
                try:
                    st = os.lstat(full)
                except (FileNotFoundError, NotADirectoryError):
                    found = False
                    break
                if not stat.S_ISDIR(st.st_mode):
                    found, hides = False, True   # a whiteout or a file hides what lies below
                    break
                if _is_opaque(full):
                    hides = True
                cur = full
            if found:
                out.append(cur)
            if hides:
                break
        return out

    def resolve(self, rel: str) -> str:
        """`rel` with every symlink among its components followed inside the root (absolute
        targets re-rooted, `..` clamped at the root), as a clean relative path. The last
        component is followed too; a symlink loop leaves `rel` as written (cleaned)."""
        def readlink(cand: str) -> str | None:
            host = self.lookup(cand)
            return os.readlink(host) if host is not None and os.path.islink(host) else None

        resolved = follow_links(rel, readlink)
        return resolved if resolved is not None else "/".join(
            p for p in rel.split("/") if p and p != ".")

    def stat(self, rel: str) -> os.stat_result | None:
        host = self.lookup(self.resolve(rel))
        return os.lstat(host) if host is not None else None

    def is_dir(self, rel: str) -> bool:
        st = self.stat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def read_text(self, rel: str) -> str:
        """The text of a file in the view ("" when absent or unreadable)."""
        host = self.lookup(self.resolve(rel))
        if host is None:
            return ""
        try:
            return host.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def _is_opaque(path: Path) -> bool:
    for name in (OPAQUE_XATTR, "user.overlay.opaque"):
        with contextlib.suppress(OSError):
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
    return False


def _is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
