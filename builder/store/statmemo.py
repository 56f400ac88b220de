"""The stat memo: a file's content fingerprint remembered under its path and stat stamp."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from builder.buildstamp import settled, stamp_of


class StatMemo:
    """Remembers a file's content fingerprint keyed by its path and a stat stamp
    (size, mtime_ns, ino, ctime_ns): a changed stamp means re-read. Safe across processes
    (SQLite WAL); use as a context manager to commit on exit."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS memo (path TEXT PRIMARY KEY, stamp TEXT, "
                         "fp TEXT)")
        self._pending: list[tuple[str, str, str]] = []

    @staticmethod
    def stamp(st: os.stat_result) -> str:
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"

    def get(self, path: str, st: os.stat_result) -> str | None:
        row = self._db.execute("SELECT stamp, fp FROM memo WHERE path=?", (path,)).fetchone()
        if row and row[0] == self.stamp(st):
            return str(row[1])
        return None

    def put(self, path: str, st: os.stat_result, fingerprint: str) -> None:
        """Remember `fingerprint` for `path` at stamp `st`, unless the file changed too
        recently: a second write in the same timestamp tick would keep the stamp."""
        if settled(stamp_of(st)):
            self._pending.append((path, self.stamp(st), fingerprint))

    def commit(self) -> None:
        if self._pending:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO memo VALUES (?,?,?)",
                                     self._pending)
            self._pending.clear()

    def close(self) -> None:
        self.commit()
        self._db.close()

    def __enter__(self) -> StatMemo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
