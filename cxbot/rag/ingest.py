"""Incremental, crash-safe ingest of a knowledge folder.

A manifest (SQLite, beside the vector store) keeps each document's content hash. An
unchanged document is skipped; a changed one is first marked pending, then has its old
chunks deleted and new ones written (vector store, then keyword index), and only then is its
hash recorded and the mark cleared, in one transaction. So an interrupted run — even a
killed process — leaves every document either fully old, fully new, or pending, and the next
run redoes the pending ones; a pending document whose file has gone is deleted like any
removed one, so no chunk is orphaned. Embedding is batched across documents, a batch at a
time, so a long ingest keeps what it finished.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cxbot.embeddings import embed_passages
from cxbot.errors import BackendError, IngestError
from cxbot.rag.chunking import Chunk, chunk_document
from cxbot.rag.documents import SUFFIXES, Document, read_document
from cxbot.rag.store import PUBLIC

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder, Matrix
    from cxbot.rag.lexical import LexicalIndex
    from cxbot.rag.store import VectorStore

__all__ = ["FORMAT", "IngestReport", "Ingestor", "Manifest"]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest run did."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    errors: tuple[IngestError, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


FORMAT = "2"
"""How chunks are stored (2: public and staff-only collections, audience in the keyword
index). A store written in another format is re-indexed from scratch by the next ingest."""


class Manifest:
    """Content hash per ingested document, and the documents being written."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.executescript(
            "CREATE TABLE IF NOT EXISTS documents (source TEXT PRIMARY KEY, hash TEXT NOT NULL, "
            "chunks INTEGER NOT NULL, ingested_at REAL NOT NULL);"
            "CREATE TABLE IF NOT EXISTS pending (source TEXT PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )

    def hashes(self) -> dict[str, str]:
        """Recorded documents and their hashes; a pending document has no trusted hash."""
        return dict(
            self._conn.execute(
                "SELECT source, hash FROM documents "
                "WHERE source NOT IN (SELECT source FROM pending)"
            )
        )

    def known(self) -> set[str]:
        """Every source that may have chunks in the stores (recorded or pending)."""
        rows = self._conn.execute("SELECT source FROM documents UNION SELECT source FROM pending")
        return {str(source) for (source,) in rows}

    def chunk_counts(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT source, chunks FROM documents"))

    def pending(self) -> set[str]:
        return {str(source) for (source,) in self._conn.execute("SELECT source FROM pending")}

    @property
    def format(self) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        return str(row[0]) if row else None

    def set_format(self, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (value,))

    def begin(self, sources: Sequence[str]) -> None:
        """Mark documents as being written (before their chunks are touched)."""
        self._conn.executemany("INSERT OR IGNORE INTO pending VALUES (?)", [(s,) for s in sources])

    def record(self, source: str, content_hash: str, chunks: int) -> None:
        """The document's chunks are written: keep its hash and clear its pending mark."""
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)",
                (source, content_hash, chunks, time.time()),
            )
            self._conn.execute("DELETE FROM pending WHERE source = ?", (source,))

    def forget(self, source: str) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM documents WHERE source = ?", (source,))
            self._conn.execute("DELETE FROM pending WHERE source = ?", (source,))

    def close(self) -> None:
        self._conn.close()


class Ingestor:
    """Brings a vector store in line with a knowledge folder."""

    def __init__(
        self,
        root: Path,
        store: VectorStore,
        embedder: Embedder,
        manifest: Manifest,
        *,
        lexical: LexicalIndex | None = None,
        chunk_size: int = 900,
        chunk_overlap: int = 120,
        batch_chunks: int = 256,
    ) -> None:
        self.root = root
        self.store = store
        self.embedder = embedder
        self.manifest = manifest
        self.lexical = lexical
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.batch_chunks = batch_chunks

    def files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            raise IngestError("knowledge folder not found", source=str(self.root))
        for path in sorted(self.root.rglob("*")):
            hidden = any(p.startswith(".") for p in path.relative_to(self.root).parts)
            if path.is_file() and path.suffix.lower() in SUFFIXES and not hidden:
                yield path

    def run(self, progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        if self.manifest.format != FORMAT:
            known: dict[str, str] = {}  # another storage format: index everything again
        else:
            known = self.manifest.hashes()
        if known and (
            self.store.count() == 0 or (self.lexical is not None and self.lexical.count() == 0)
        ):
            known = {}  # a new or emptied store or keyword index: index everything again
        previous = self.manifest.known()
        recorded = set(self.manifest.chunk_counts())
        seen: set[str] = set()
        todo: list[tuple[Document, list[Chunk]]] = []
        errors: list[IngestError] = []
        unchanged = 0

        for path in self.files():
            source = path.relative_to(self.root).as_posix()
            seen.add(source)
            try:
                raw = path.read_bytes()
                if known.get(source) == hashlib.sha256(raw).hexdigest():
                    unchanged += 1
                    continue
                document = read_document(path, self.root, raw)
            except IngestError as exc:
                errors.append(exc)
                continue
            except OSError as exc:
                errors.append(IngestError(f"cannot read: {exc}", source=source))
                continue
            todo.append(
                (
                    document,
                    chunk_document(document, size=self.chunk_size, overlap=self.chunk_overlap),
                )
            )

        removed = sorted(previous - seen)
        for source in removed:
            self._write(source, [], None)
            self.manifest.forget(source)

        self.manifest.begin([document.source for document, _ in todo])
        self.manifest.set_format(FORMAT)
        done = 0
        for batch in self._batches(todo):
            texts = [c.embed_text for _, chunks in batch for c in chunks]
            vectors = embed_passages(self.embedder, texts) if texts else None
            offset = 0
            for document, chunks in batch:
                block = vectors[offset : offset + len(chunks)] if vectors is not None else None
                offset += len(chunks)
                self._write(document.source, chunks, block)
                self.manifest.record(document.source, document.content_hash, len(chunks))
                done += 1
                if progress is not None:
                    progress(document.source, done, len(todo))

        return IngestReport(
            added=tuple(d.source for d, _ in todo if d.source not in recorded),
            updated=tuple(d.source for d, _ in todo if d.source in recorded),
            removed=tuple(removed),
            unchanged=unchanged,
            chunks_embedded=sum(len(chunks) for _, chunks in todo),
            chunks_total=self.store.count(),
            seconds=time.perf_counter() - started,
            errors=tuple(errors),
        )

    def _batches(
        self, todo: Sequence[tuple[Document, list[Chunk]]]
    ) -> Iterator[list[tuple[Document, list[Chunk]]]]:
        batch: list[tuple[Document, list[Chunk]]] = []
        size = 0
        for item in todo:
            if batch and size + len(item[1]) > self.batch_chunks:
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += len(item[1])
        if batch:
            yield batch

    def _write(self, source: str, chunks: Sequence[Chunk], vectors: Matrix | None) -> None:
        """Replace one document's chunks in the vector store and the keyword index."""
        try:
            self.store.delete_source(source)
            if chunks and vectors is not None:
                self.store.upsert(
                    [c.id for c in chunks],
                    vectors,
                    [c.text for c in chunks],
                    [c.metadata() for c in chunks],
                )
            if self.lexical is not None:
                self.lexical.replace_source(
                    source,
                    [c.id for c in chunks],
                    [f"{c.title} {c.section}".strip() for c in chunks],
                    [c.text for c in chunks],
                    [str(c.metadata().get("audience", PUBLIC)) for c in chunks],
                )
        except BackendError:
            raise
        except Exception as exc:  # the store's own errors: keep the manifest honest
            raise BackendError(f"writing {source} failed: {exc}") from exc
