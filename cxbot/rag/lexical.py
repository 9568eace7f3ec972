"""Keyword index of the knowledge chunks: SQLite FTS5 with BM25, kept next to the vector
store and written by the same ingest (per document, before its hash is recorded).

Each row keeps its chunk's ``audience``; a customer's search only matches ``public`` rows.
An index written before the column existed is dropped and rebuilt by the next ingest (it
re-indexes everything when the keyword index is empty)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.errors import BackendError
from cxbot.rag.store import PUBLIC

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
        conn = self._conn()
        try:
            columns = [row[1] for row in conn.execute("PRAGMA table_info(chunks)")]
            if columns and "audience" not in columns:
                conn.execute("DROP TABLE chunks")
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(id UNINDEXED, "
                "source UNINDEXED, audience UNINDEXED, title, text, tokenize='porter unicode61')"
            )
        except Exception as exc:  # sqlite3.OperationalError when FTS5 is not compiled in
            raise BackendError(f"SQLite FTS5 is unavailable: {exc}") from exc

    def replace_source(
        self,
        source: str,
        ids: Sequence[str],
        titles: Sequence[str],
        texts: Sequence[str],
        audiences: Sequence[str] | None = None,
    ) -> None:
        """Replace one source's chunks (``audiences``: per chunk, default public)."""
        audiences = audiences if audiences is not None else [PUBLIC] * len(ids)
        self.replace_many(
            [
                (i, source, t, x, a)
                for i, t, x, a in zip(ids, titles, texts, audiences, strict=True)
            ],
            sources=[source],
        )

    def replace_many(
        self,
        rows: Sequence[tuple[str, str, str, str] | tuple[str, str, str, str, str]],
        *,
        sources: Sequence[str] = (),
    ) -> None:
        """Replace the chunks of many sources in one transaction.

        Rows are (id, source, title, text[, audience]); the old rows of every source named
        by a row or in ``sources`` are deleted first.
        """
        full = [(*r, PUBLIC) if len(r) == 4 else r for r in rows]
        names = dict.fromkeys([*sources, *(r[1] for r in full)])
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM chunks WHERE source = ?", [(s,) for s in names])
            conn.executemany(
                "INSERT INTO chunks (id, source, title, text, audience) VALUES (?, ?, ?, ?, ?)",
                full,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def delete_source(self, source: str) -> None:
        self._conn().execute("DELETE FROM chunks WHERE source = ?", (source,))

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def query(self, text: str, k: int, *, internal: bool = False) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores (higher is better), best first; staff-only chunks only
        when ``internal``."""
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in dict.fromkeys(words))
        audience = "" if internal else f" AND audience = '{PUBLIC}'"
        rows = self._conn().execute(
            "SELECT id, -bm25(chunks, 0, 0, 0, 2.0, 1.0) AS score FROM chunks "
            f"WHERE chunks MATCH ?{audience} ORDER BY score DESC LIMIT ?",
            (match, k),
        )
        return [(str(i), float(s)) for i, s in rows]

    def close(self) -> None:
        self._conn.close()
