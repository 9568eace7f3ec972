"""Incremental, crash-safe ingest of a knowledge folder.

A manifest (SQLite, beside the vector store) keeps each document's content hash. An
unchanged document is skipped; a changed one has its old chunks deleted and new ones
written, and only then is its hash recorded — so an interrupted run leaves every document
either fully old, fully new, or marked for redo, and the next run finishes the job. A
removed document's chunks are deleted. Embedding is batched across all changed documents.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cxbot.errors import BackendError, IngestError
from cxbot.rag.chunking import Chunk, chunk_document
from cxbot.rag.documents import SUFFIXES, Document, read_document

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder
    from cxbot.rag.lexical import LexicalIndex
    from cxbot.rag.store import VectorStore

__all__ = ["IngestReport", "Ingestor", "Manifest"]

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


class Manifest:
    """Content hash per ingested document."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS documents (source TEXT PRIMARY KEY, hash TEXT NOT NULL, "
            "chunks INTEGER NOT NULL, ingested_at REAL NOT NULL)"
        )

    def hashes(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT source, hash FROM documents"))

    def record(self, source: str, content_hash: str, chunks: int) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)",
            (source, content_hash, chunks, time.time()),
        )

    def forget(self, source: str) -> None:
        self._conn.execute("DELETE FROM documents WHERE source = ?", (source,))

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
    ) -> None:
        self.root = root
        self.store = store
        self.embedder = embedder
        self.manifest = manifest
        self.lexical = lexical
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            raise IngestError("knowledge folder not found", source=str(self.root))
        for path in sorted(self.root.rglob("*")):
            hidden = any(p.startswith(".") for p in path.relative_to(self.root).parts)
            if path.is_file() and path.suffix.lower() in SUFFIXES and not hidden:
                yield path

    def run(self, progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        known = self.manifest.hashes()
        if self.lexical is not None and known and self.lexical.count() == 0:
            known = {}  # a keyword index added to an existing store: index everything again
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

        removed = sorted(set(known) - seen)
        for source in removed:
            self.store.delete_source(source)
            if self.lexical is not None:
                self.lexical.delete_source(source)
            self.manifest.forget(source)

        texts = [c.embed_text for _, chunks in todo for c in chunks]
        vectors = self.embedder.embed_documents(texts) if texts else None
        offset = 0
        for index, (document, chunks) in enumerate(todo):
            if progress is not None:
                progress(document.source, index + 1, len(todo))
            assert vectors is not None
            block = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            try:
                self.store.delete_source(document.source)
                self.store.upsert(
                    [c.id for c in chunks],
                    block,
                    [c.text for c in chunks],
                    [c.metadata() for c in chunks],
                )
                if self.lexical is not None:
                    self.lexical.replace_source(
                        document.source,
                        [c.id for c in chunks],
                        [f"{c.title} {c.section}".strip() for c in chunks],
                        [c.text for c in chunks],
                    )
            except BackendError:
                raise
            except Exception as exc:  # the store's own errors: keep the manifest honest
                raise BackendError(f"writing {document.source} failed: {exc}") from exc
            self.manifest.record(document.source, document.content_hash, len(chunks))

        return IngestReport(
            added=tuple(d.source for d, _ in todo if d.source not in known),
            updated=tuple(d.source for d, _ in todo if d.source in known),
            removed=tuple(removed),
            unchanged=unchanged,
            chunks_embedded=len(texts),
            chunks_total=self.store.count(),
            seconds=time.perf_counter() - started,
            errors=tuple(errors),
        )
