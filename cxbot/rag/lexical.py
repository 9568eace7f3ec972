"""Keyword index of the knowledge chunks: SQLite FTS5 with BM25, kept next to the vector
store and written by the same ingest (per document, before its hash is recorded)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.errors import BackendError

__all__ = ["LexicalIndex"]

_WORD = re.compile(r"[A-Za-z0-9£€$%]+(?:['.][A-Za-z0-9]+)*")
_STOP = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
        "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our",
        "so", "that", "the", "their", "them", "there", "they", "this", "to", "was", "we", "what",
        "when", "where", "which", "who", "why", "will", "with", "you", "your",
    }
)  # fmt: skip


class LexicalIndex:
    """BM25 search over chunk text and titles."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = ThreadLocalSQLite(self.path)
        try:
            self._conn().execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5("
                "id UNINDEXED, source UNINDEXED, title, text, tokenize='porter unicode61')"
            )
        except Exception as exc:  # sqlite3.OperationalError when FTS5 is not compiled in
            raise BackendError(f"SQLite FTS5 is unavailable: {exc}") from exc

    def replace_source(
        self, source: str, ids: Sequence[str], titles: Sequence[str], texts: Sequence[str]
    ) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM chunks WHERE source = ?", (source,))
        conn.executemany(
            "INSERT INTO chunks (id, source, title, text) VALUES (?, ?, ?, ?)",
            [(i, source, t, x) for i, t, x in zip(ids, titles, texts, strict=True)],
        )
        conn.execute("COMMIT")

    def replace_many(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Replace the chunks of many sources in one transaction: (id, source, title, text)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "DELETE FROM chunks WHERE source = ?", [(s,) for s in dict.fromkeys(r[1] for r in rows)]
        )
        conn.executemany("INSERT INTO chunks (id, source, title, text) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")

    def delete_source(self, source: str) -> None:
        self._conn().execute("DELETE FROM chunks WHERE source = ?", (source,))

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def query(self, text: str, k: int) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores (higher is better), best first."""
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in dict.fromkeys(words))
        rows = self._conn().execute(
            "SELECT id, -bm25(chunks, 0, 0, 2.0, 1.0) AS score FROM chunks "
            "WHERE chunks MATCH ? ORDER BY score DESC LIMIT ?",
            (match, k),
        )
        return [(str(i), float(s)) for i, s in rows]

    def close(self) -> None:
        self._conn.close()
