"""One SQLite connection per thread for a store file (SQLite connections are not shared
across threads); WAL so readers do not block the writer."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["ThreadLocalSQLite"]


class ThreadLocalSQLite:
    """Opens ``path`` lazily, once per thread, in autocommit mode (explicit transactions)."""

    def __init__(self, path: str | Path, *, wal: bool = True) -> None:
        self.path = Path(path)
        self._wal = wal
        self._local = threading.local()

    def __call__(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            if self._wal:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs on exit)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
