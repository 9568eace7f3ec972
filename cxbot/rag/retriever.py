"""Retrieval: the turn's vector → the top passages that score above the evidence threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxbot.rag.store import Hit, VectorStore

if TYPE_CHECKING:
    from cxbot.embeddings import Vector

__all__ = ["Retriever"]


class Retriever:
    """Dense top-k retrieval from the vector store."""

    def __init__(self, store: VectorStore, *, top_k: int = 4, min_score: float = 0.35) -> None:
        self.store = store
        self.top_k = top_k
        self.min_score = min_score

    def run(self, vector: Vector, *, k: int | None = None) -> list[Hit]:
        """Passages at or above ``min_score``, best first (empty = no evidence)."""
        hits = self.store.query(vector, k or self.top_k)
        return [h for h in hits if h.score >= self.min_score]
