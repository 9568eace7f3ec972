"""Retrieval: the turn's vector (and text) → the passages that are evidence.

Hybrid by default: dense candidates from the vector store and keyword candidates from the
BM25 index are fused by reciprocal rank (RRF). Every passage keeps its cosine similarity to
the question, and only passages at or above ``min_score`` count as evidence, so the
"I don't know" threshold means the same with or without the keyword index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxbot.rag.store import Hit, VectorStore

if TYPE_CHECKING:
    from cxbot.embeddings import Vector
    from cxbot.rag.lexical import LexicalIndex

__all__ = ["RRF_K", "Retriever"]

RRF_K = 60
"""The constant of reciprocal-rank fusion: score = sum of 1 / (RRF_K + rank)."""


class Retriever:
    """Dense or hybrid (dense + BM25, RRF-fused) top-k retrieval."""

    def __init__(
        self,
        store: VectorStore,
        *,
        lexical: LexicalIndex | None = None,
        top_k: int = 4,
        min_score: float = 0.35,
        candidates: int = 12,
        keyword_weight: float = 0.5,
    ) -> None:
        self.store = store
        self.lexical = lexical
        self.top_k = top_k
        self.min_score = min_score
        self.candidates = candidates
        self.keyword_weight = keyword_weight

    def run(self, vector: Vector, text: str = "", *, k: int | None = None) -> list[Hit]:
        """Passages at or above ``min_score``, best fused rank first (empty = no evidence)."""
        k = k or self.top_k
        if self.lexical is None or not text:
            return [h for h in self.store.query(vector, k) if h.score >= self.min_score]
        dense = self.store.query(vector, max(k, self.candidates))
        keyword = self.lexical.query(text, max(k, self.candidates))
        fused: dict[str, float] = {}
        for weight, ranking in (
            (1.0, [h.id for h in dense]),
            (self.keyword_weight, [i for i, _ in keyword]),
        ):
            for rank, chunk_id in enumerate(ranking, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (RRF_K + rank)
        best = sorted(fused, key=lambda i: -fused[i])[:k]
        by_id = {h.id: h for h in dense}
        missing = [i for i in best if i not in by_id]
        by_id.update({h.id: h for h in self.store.get(missing, vector)})
        hits = [by_id[i] for i in best if i in by_id]
        return [h for h in hits if h.score >= self.min_score]
