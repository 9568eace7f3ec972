"""The knowledge search as a LangChain retriever, for LangChain users composing their own
chains: :meth:`cxbot.Assistant.as_retriever` builds it.

Importing this module imports ``langchain_core``; nothing in ``cxbot`` imports it before
``as_retriever`` is called.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, SkipValidation

from cxbot.embeddings import Embedder
from cxbot.rag.retriever import Retriever

if TYPE_CHECKING:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )

    from cxbot.rag.store import Hit

__all__ = ["KnowledgeRetriever"]


class KnowledgeRetriever(BaseRetriever):
    """Runs an assistant's retrieval stage on a query: the query is embedded with the
    assistant's embedder and searched like a customer's question (dense or hybrid, the same
    ``min_score``), and each passage becomes a ``Document`` whose ``page_content`` is the
    chunk text and whose metadata is the chunk's, plus ``id`` and ``score`` (cosine
    similarity to the query). An empty list means no evidence."""

    retriever: SkipValidation[Retriever]
    embedder: SkipValidation[Embedder]
    k: int | None = Field(None, gt=0, description="Passages at most; None = rag.top_k.")
    internal: bool = Field(False, description="Also search staff-only chunks.")

    def _search(self, query: str) -> list[Document]:
        vector = self.embedder.embed_query(query)
        hits = self.retriever.run(vector, query, k=self.k, internal=self.internal)
        return [_document(hit) for hit in hits]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self._search(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query)


def _document(hit: Hit) -> Document:
    metadata: dict[str, Any] = {**hit.metadata, "id": hit.id, "score": hit.score}
    return Document(page_content=hit.text, metadata=metadata, id=hit.id)
