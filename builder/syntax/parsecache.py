"""The parse cache: typed ASTs of Dockerfiles already parsed, so a rebuild of an unchanged
Dockerfile skips importing lark and parsing (~0.1 s of CPU per process).

Entries live in the user's private cache directory (`$XDG_CACHE_HOME/pybuild`, else
`~/.cache/pybuild`, mode 0700, owned by the user: entries are pickles and are only ever read
from a directory nobody else can write to). An entry's name is a sha256 over the Dockerfile
text, its path, the strict flag, the Python version and the bytes of every module and grammar
file that determine the AST (builder/syntax/*.py, grammar, builder/source.py,
builder/errors.py), so an edited parser never answers from an old entry. Only successful
parses are stored; a missing, unreadable or foreign entry is a miss. Writes are atomic (temp
file + rename) and the directory keeps at most MAX_ENTRIES entries, evicting the least
recently used (a hit refreshes its entry's mtime).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any

MAX_ENTRIES = 128
_PREFIX = "ast-"
_PACKAGE = Path(__file__).resolve().parent.parent  # .../builder
_identity: bytes | None = None


def directory() -> Path | None:
    """The private cache directory (made on first use), or None when there is none."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "pybuild"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None
    return path


def _code_identity() -> bytes:
    """A digest of every source file that shapes the AST (read once per process)."""
    global _identity
    if _identity is None:
        from builder.syntax.grammar import grammar_path

        files = sorted((_PACKAGE / "syntax").glob("*.py"))
        files += [_PACKAGE / "source.py", _PACKAGE / "errors.py", grammar_path()]
        h = hashlib.sha256(repr(sys.version_info[:3]).encode())
        for f in files:
            data = f.read_bytes()
            h.update(f"{f.name}\0{len(data)}\0".encode())
            h.update(data)
        _identity = h.digest()
    return _identity


def _entry(text: str, path: str, strict: bool) -> Path | None:
    where = directory()
    if where is None:
        return None
    h = hashlib.sha256(_code_identity())
    for part in (path, "strict" if strict else "lax", text):
        data = part.encode("utf-8", "surrogatepass")
        h.update(f"{len(data)}\0".encode())
        h.update(data)
    return where / f"{_PREFIX}{h.hexdigest()}.pickle"


def load(text: str, path: str, strict: bool) -> Any | None:
    """The cached AST of this parse, or None."""
    try:
        entry = _entry(text, path, strict)
        if entry is None:
            return None
        with open(entry, "rb") as fh:
            if os.fstat(fh.fileno()).st_uid != os.getuid():
                return None
            tree = pickle.load(fh)
            os.utime(fh.fileno())  # a hit is recent use: `_trim` evicts the least recent
            return tree
    except Exception:  # noqa: BLE001 - a cache: any unreadable entry is a miss
        return None


def store(text: str, path: str, strict: bool, tree: Any) -> None:
    """Remember the AST of a successful parse (best effort: errors are ignored)."""
    try:
        entry = _entry(text, path, strict)
        if entry is None:
            return
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(tree, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
        _trim(entry.parent)
    except Exception:  # noqa: BLE001 - a cache that cannot be written is just not used
        return


def _trim(where: Path) -> None:
    entries = [e for e in os.scandir(where) if e.name.startswith(_PREFIX)]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for e in entries[: len(entries) - MAX_ENTRIES // 2]:
        try:
            os.unlink(e.path)
        except OSError:
            pass
