"""Keyword index of the knowledge chunks: SQLite FTS5 with BM25, kept next to the vector
store and written by the same ingest (per document, before its hash is recorded).

Two FTS5 tables: ``public`` holds the chunks customers may see and ``everything`` every
chunk, staff-only ones included — a customer's search reads only the first and pays for no
filter, and a staff search ranks all chunks with one set of term statistics. An
ordinary table maps each source to its rows, so replacing a document's chunks deletes by
rowid instead of scanning the index. A query first asks for chunks holding every term of
the question and, when fewer than ``k`` do, for chunks holding any of them — the "any"
query is the costly one on a big index (it scores every chunk with a common word), and a
specific question rarely needs it. An index in an older layout is dropped and rebuilt by
the next ingest (which re-indexes everything when the keyword index is empty)."""

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
PUBLIC_TABLE, ALL_TABLE = "public", "everything"
"""FTS5 tables: what customers may see; every chunk (what staff may see)."""
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS rows (rowid INTEGER PRIMARY KEY, source TEXT NOT NULL, "
    "public INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rows_source ON rows (source)",
    *(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(id UNINDEXED, title, text, "
        "tokenize='porter unicode61')"
        for table in (PUBLIC_TABLE, ALL_TABLE)
    ),
]

Row = tuple[str, str, str, str] | tuple[str, str, str, str, str]
"""(id, source, title, text[, audience])."""


class LexicalIndex:
    """BM25 search over chunk text and titles."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = ThreadLocalSQLite(self.path)
        conn = self._conn()
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            for old in ("chunks", "internal"):  # the layouts of earlier versions
                if old in tables:
                    conn.execute(f"DROP TABLE {old}")
            for statement in _SCHEMA:
                conn.execute(statement)
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

    def replace_many(self, rows: Sequence[Row], *, sources: Sequence[str] = ()) -> None:
        """Replace the chunks of many sources in one transaction.

        Rows are (id, source, title, text[, audience]); the old rows of every source named
        by a row or in ``sources`` are deleted first.
        """
        names = list(dict.fromkeys([*sources, *(r[1] for r in rows)]))
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name in names:
                self._delete(name)
            for row in rows:
                public = (row[4] if len(row) == 5 else PUBLIC) == PUBLIC
                rowid = conn.execute(
                    "INSERT INTO rows (source, public) VALUES (?, ?)", (row[1], int(public))
                ).lastrowid
                for table in (PUBLIC_TABLE, ALL_TABLE) if public else (ALL_TABLE,):
                    conn.execute(
                        f"INSERT INTO {table} (rowid, id, title, text) VALUES (?, ?, ?, ?)",
                        (rowid, row[0], row[2], row[3]),
                    )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _delete(self, source: str) -> None:
        conn = self._conn()
        for table in (PUBLIC_TABLE, ALL_TABLE):
            conn.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM rows WHERE source = ?)",
                (source,),
            )
        conn.execute("DELETE FROM rows WHERE source = ?", (source,))

    def delete_source(self, source: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._delete(source)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def query(self, text: str, k: int, *, internal: bool = False) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores (higher is better), best first; staff-only chunks only
        when ``internal``. Chunks with every term come first; when fewer than ``k`` have
        every term, chunks with any term fill the list."""
        words = list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in _STOP))
        if not words:
            return []
        terms = ['"' + w.replace('"', "") + '"' for w in words]
        found = self._match(" AND ".join(terms), k, internal)
        if len(found) < k and len(terms) > 1:
            seen = {chunk_id for chunk_id, _ in found}
            found += [
                hit for hit in self._match(" OR ".join(terms), k, internal) if hit[0] not in seen
            ][: k - len(found)]
        return found

    def _match(self, expression: str, k: int, internal: bool) -> list[tuple[str, float]]:
        table = ALL_TABLE if internal else PUBLIC_TABLE
        rows = self._conn().execute(
            f"SELECT id, -bm25({table}, 0, 2.0, 1.0) AS score FROM {table} "
            f"WHERE {table} MATCH ? ORDER BY score DESC LIMIT ?",
            (expression, k),
        )
        return [(str(i), float(s)) for i, s in rows]

    def close(self) -> None:
        self._conn.close()
