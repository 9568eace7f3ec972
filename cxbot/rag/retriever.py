"""Retrieval: the turn's vector (and text) → the passages that are evidence.

Dense candidates from the vector store and, when a keyword index is given, BM25 candidates
are fused by reciprocal rank (RRF); an optional re-ranker (a cross-encoder) then orders the
fused candidates. Every passage keeps its cosine similarity to the question, and only
passages at or above ``min_score`` count as evidence, so the "I don't know" threshold means
the same with or without the keyword index or the re-ranker. A customer's search
(``internal=False``, the default) never returns a staff-only chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxbot.rag.store import Hit, VectorStore

if TYPE_CHECKING:
    from cxbot.embeddings import Vector
    from cxbot.rag.lexical import LexicalIndex
    from cxbot.rag.rerank import Reranker

__all__ = ["RRF_K", "Retriever"]

RRF_K = 60
"""The constant of reciprocal-rank fusion: score = sum of 1 / (RRF_K + rank)."""


class Retriever:
    """Dense or hybrid (dense + BM25, RRF-fused) top-k retrieval, optionally re-ranked."""

    def __init__(
        self,
        store: VectorStore,
        *,
        lexical: LexicalIndex | None = None,
        top_k: int = 4,
        min_score: float = 0.35,
        candidates: int = 12,
        keyword_weight: float = 0.5,
        reranker: Reranker | None = None,
        rerank_candidates: int = 20,
        hybrid: bool = True,
    ) -> None:
        self.store = store
        self.lexical = lexical
        """The keyword index (kept up to date by ingest even when ``hybrid`` is off)."""
        self.hybrid = hybrid
        self.top_k = top_k
        self.min_score = min_score
        self.candidates = candidates
        self.keyword_weight = keyword_weight
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates

    def run(
        self, vector: Vector, text: str = "", *, k: int | None = None, internal: bool = False
    ) -> list[Hit]:
        """Passages at or above ``min_score``, best first (empty = no evidence).

        ``text`` is the search text for the keyword index and the re-ranker (the vector is
        its embedding); ``internal`` also searches staff-only chunks.
        """
        k = k or self.top_k
        depth = max(k, self.rerank_candidates if self.reranker is not None else k)
        hits = self.rank(vector, text, depth=depth, internal=internal)
        hits = [h for h in hits if h.score >= self.min_score]
        if self.reranker is not None and text and len(hits) > 1:
            hits = self.reranker.rerank(text, hits, k)
        return hits[:k]

    def rank(
        self, vector: Vector, text: str = "", *, depth: int, internal: bool = False
    ) -> list[Hit]:
        """The ``depth`` best passages by fused rank, whatever their score."""
        if self.lexical is None or not self.hybrid or not text:
            return self.store.query(vector, depth, internal=internal)
        pool = max(depth, self.candidates)
        dense = self.store.query(vector, pool, internal=internal)
        keyword = self.lexical.query(text, pool, internal=internal)
        fused: dict[str, float] = {}
        for weight, ranking in (
            (1.0, [h.id for h in dense]),
            (self.keyword_weight, [i for i, _ in keyword]),
        ):
            for rank, chunk_id in enumerate(ranking, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (RRF_K + rank)
        best = sorted(fused, key=lambda i: -fused[i])[:depth]
        by_id = {h.id: h for h in dense}
        missing = [i for i in best if i not in by_id]
        by_id.update({h.id: h for h in self.store.get(missing, vector, internal=internal)})
        return [by_id[i] for i in best if i in by_id]
