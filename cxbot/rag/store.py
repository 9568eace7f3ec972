"""The vector store protocol and the Chroma implementation (embedded, in-memory or server).

cxbot computes embeddings itself and passes them in; Chroma never embeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cxbot.errors import BackendError

if TYPE_CHECKING:
    from cxbot.embeddings import Matrix, Vector

__all__ = ["ChromaStore", "Hit", "VectorStore"]

COLLECTION = "knowledge"


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    text: str
    metadata: Mapping[str, Any]
    score: float
    """Cosine similarity, 1 = identical."""


class VectorStore(Protocol):
    def upsert(
        self,
        ids: Sequence[str],
        vectors: Matrix,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None: ...

    def delete_source(self, source: str) -> None: ...

    def query(self, vector: Vector, k: int) -> list[Hit]: ...

    def get(self, ids: Sequence[str], vector: Vector) -> list[Hit]: ...

    def count(self) -> int: ...

    def sources(self) -> set[str]: ...


class ChromaStore:
    """Chroma collection ``knowledge`` with cosine distance.

    ``path`` → ``PersistentClient``; ``path=None`` → in-memory ``EphemeralClient``;
    ``url`` → ``HttpClient`` for a shared Chroma server.
    """

    def __init__(self, path: str | Path | None = None, *, url: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.url = url
        self._collection: Any = None

    def warm_up(self) -> None:
        self._col()

    def _col(self) -> Any:
        if self._collection is None:
            import chromadb
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False)
            try:
                if self.url is not None:
                    from urllib.parse import urlparse

                    parsed = urlparse(self.url)
                    client: Any = chromadb.HttpClient(
                        host=parsed.hostname or "127.0.0.1",
                        port=parsed.port or 8000,
                        settings=settings,
                    )
                elif self.path is not None:
                    client = chromadb.PersistentClient(path=str(self.path), settings=settings)
                else:
                    client = chromadb.EphemeralClient(settings=settings)
                self._collection = client.get_or_create_collection(
                    COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None
                )
            except Exception as exc:  # chromadb raises many unrelated types
                raise BackendError(f"vector store unavailable: {exc}") from exc
        return self._collection

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Matrix,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        if not ids:
            return
        self._col().upsert(
            ids=list(ids),
            embeddings=vectors,
            documents=list(texts),
            metadatas=[dict(m) for m in metadatas],
        )

    def delete_source(self, source: str) -> None:
        self._col().delete(where={"source": source})

    def query(self, vector: Vector, k: int) -> list[Hit]:
        col = self._col()
        if col.count() == 0:
            return []
        result = col.query(
            query_embeddings=[vector],
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(id=i, text=d, metadata=m or {}, score=1.0 - float(dist))
            for i, d, m, dist in zip(
                result["ids"][0],
                result["documents"][0],
                result["metadatas"][0],
                result["distances"][0],
                strict=True,
            )
        ]

    def get(self, ids: Sequence[str], vector: Vector) -> list[Hit]:
        """These chunks, scored against ``vector`` (cosine), in the order of ``ids``."""
        if not ids:
            return []
        import numpy as np

        result = self._col().get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        found = {
            i: Hit(id=i, text=d, metadata=m or {}, score=float(np.dot(e, vector)))
            for i, d, m, e in zip(
                result["ids"],
                result["documents"],
                result["metadatas"],
                result["embeddings"],
                strict=True,
            )
        }
        return [found[i] for i in ids if i in found]

    def count(self) -> int:
        return int(self._col().count())

    def sources(self) -> set[str]:
        metas = self._col().get(include=["metadatas"])["metadatas"] or []
        return {str(m["source"]) for m in metas if m and "source" in m}
