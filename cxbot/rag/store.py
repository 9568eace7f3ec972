"""The vector store protocol and the Chroma implementation (embedded, in-memory or server).

cxbot computes embeddings itself and passes them in; Chroma never embeds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cxbot.errors import BackendError

if TYPE_CHECKING:
    from cxbot.embeddings import Matrix, Vector

__all__ = ["PUBLIC", "ChromaStore", "Hit", "VectorStore"]

COLLECTION = "knowledge"
PUBLIC = "public"
"""The ``audience`` metadata value of chunks a customer may see; anything else (``internal``)
is for staff only and never retrieved for a customer."""


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    text: str
    metadata: Mapping[str, Any]
    score: float
    """Cosine similarity, 1 = identical."""


class VectorStore(Protocol):
    """Where chunk vectors live. Every method raises :class:`~cxbot.errors.BackendError`
    when the store fails (a server that is down, a broken file), and nothing else."""

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Matrix,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None: ...

    def delete_source(self, source: str) -> None: ...

    def query(self, vector: Vector, k: int, *, internal: bool = False) -> list[Hit]: ...

    def get(self, ids: Sequence[str], vector: Vector, *, internal: bool = False) -> list[Hit]: ...

    def count(self) -> int: ...

    def sources(self) -> set[str]: ...


class ChromaStore:
    """Two Chroma collections with cosine distance: ``knowledge`` holds the chunks customers
    may see (``audience: public``) and ``knowledge_internal`` the staff-only ones, so a
    customer's query never touches internal chunks and costs no metadata filter.

    ``path`` → ``PersistentClient``; ``path=None`` → in-memory ``EphemeralClient``;
    ``url`` → ``HttpClient`` for a shared Chroma server.
    """

    def __init__(self, path: str | Path | None = None, *, url: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.url = url
        self._collections: tuple[Any, Any] | None = None

    def warm_up(self) -> None:
        self._cols()

    def _cols(self) -> tuple[Any, Any]:
        """The public and the internal collection."""
        if self._collections is None:
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
                        ssl=parsed.scheme == "https",
                        settings=settings,
                    )
                elif self.path is not None:
                    client = chromadb.PersistentClient(path=str(self.path), settings=settings)
                else:
                    client = chromadb.EphemeralClient(settings=settings)
                self._collections = tuple(
                    client.get_or_create_collection(
                        name, metadata={"hnsw:space": "cosine"}, embedding_function=None
                    )
                    for name in (COLLECTION, f"{COLLECTION}_internal")
                )
            except Exception as exc:  # chromadb raises many unrelated types
                raise BackendError(f"vector store unavailable: {exc}") from exc
        assert self._collections is not None
        return self._collections

    @contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """Chroma's failures (a server gone away, a broken file) as :class:`BackendError`."""
        try:
            yield
        except BackendError:
            raise
        except Exception as exc:  # chromadb raises many unrelated types (httpx, its own)
            raise BackendError(f"vector store failed to {doing}: {exc}") from exc

    def _col(self) -> Any:
        """The public collection (what a customer's query searches)."""
        return self._cols()[0]

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Matrix,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write chunks; each goes to the collection of its ``audience`` (default public)."""
        if not ids:
            return
        with self._failing("write chunks"):
            self._upsert(ids, vectors, texts, metadatas)

    def _upsert(
        self,
        ids: Sequence[str],
        vectors: Matrix,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        for collection, public in zip(self._cols(), (True, False), strict=True):
            rows = [
                i
                for i, meta in enumerate(metadatas)
                if (meta.get("audience", PUBLIC) == PUBLIC) == public
            ]
            if rows:
                collection.upsert(
                    ids=[ids[i] for i in rows],
                    embeddings=[vectors[i] for i in rows],
                    documents=[texts[i] for i in rows],
                    metadatas=[dict(metadatas[i]) for i in rows],
                )

    def delete_source(self, source: str) -> None:
        with self._failing("delete chunks"):
            for collection in self._cols():
                collection.delete(where={"source": source})

    def query(self, vector: Vector, k: int, *, internal: bool = False) -> list[Hit]:
        """The ``k`` nearest chunks; staff-only chunks too when ``internal``."""
        with self._failing("search"):
            return self._query(vector, k, internal=internal)

    def _query(self, vector: Vector, k: int, *, internal: bool) -> list[Hit]:
        hits: list[Hit] = []
        for collection in self._cols() if internal else self._cols()[:1]:
            if collection.count() == 0:
                continue
            result = collection.query(
                query_embeddings=[vector],
                n_results=k,
                include=["documents", "metadatas", "distances"],
            )
            hits += [
                Hit(id=i, text=d, metadata=m or {}, score=1.0 - float(dist))
                for i, d, m, dist in zip(
                    result["ids"][0],
                    result["documents"][0],
                    result["metadatas"][0],
                    result["distances"][0],
                    strict=True,
                )
            ]
        return sorted(hits, key=lambda h: -h.score)[:k]

    def get(self, ids: Sequence[str], vector: Vector, *, internal: bool = False) -> list[Hit]:
        """These chunks, scored against ``vector`` (cosine), in the order of ``ids``; ids of
        staff-only chunks are skipped unless ``internal``."""
        if not ids:
            return []
        with self._failing("read chunks"):
            return self._get(ids, vector, internal=internal)

    def _get(self, ids: Sequence[str], vector: Vector, *, internal: bool) -> list[Hit]:
        import numpy as np

        found: dict[str, Hit] = {}
        for collection in self._cols() if internal else self._cols()[:1]:
            result = collection.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
            for i, d, m, e in zip(
                result["ids"],
                result["documents"],
                result["metadatas"],
                result["embeddings"],
                strict=True,
            ):
                found[i] = Hit(id=i, text=d, metadata=m or {}, score=float(np.dot(e, vector)))
        return [found[i] for i in ids if i in found]

    def count(self) -> int:
        with self._failing("count chunks"):
            return sum(int(c.count()) for c in self._cols())

    def sources(self) -> set[str]:
        out: set[str] = set()
        with self._failing("list documents"):
            for collection in self._cols():
                metas = collection.get(include=["metadatas"])["metadatas"] or []
                out |= {str(m["source"]) for m in metas if m and "source" in m}
        return out
