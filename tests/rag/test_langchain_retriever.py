"""``Assistant.as_retriever()``: the assistant's own knowledge search as a LangChain
retriever (real MiniLM, real Chroma, the ingested Northwind knowledge)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.testing import FixedClock

NOW = datetime(2026, 11, 25, 10, 0)

LOST_CARD = "I lost my card, what should I do?"
STAFF_QUESTION = "How do staff waive the replacement card fee for a vulnerable customer?"
STAFF_NOTE = """---
title: Waiving the replacement card fee
audience: internal
---
# Waiving the replacement card fee

Staff may waive the replacement card fee for a vulnerable customer. Open the card record in
the back-office console, choose Fees, then Waive, and record the vulnerability flag and the
reason code VC-7 before confirming the waiver.
"""


@pytest.fixture(scope="module")
def search_bot(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
) -> Iterator[Assistant]:
    root = tmp_path_factory.mktemp("as-retriever") / "project"
    shutil.copytree(ingested_project, root)
    bot = Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env={})
    yield bot
    bot.close()


def test_documents_are_the_passages_the_assistant_retrieves(
    search_bot: Assistant, embedder: SentenceTransformerEmbedder
) -> None:
    retriever = search_bot.as_retriever()

    docs = retriever.invoke(LOST_CARD)

    assert isinstance(retriever, BaseRetriever)
    hits = search_bot.pipeline.retriever.run(embedder.embed_query(LOST_CARD), LOST_CARD)
    assert hits
    assert [d.page_content for d in docs] == [h.text for h in hits]
    for doc, hit in zip(docs, hits, strict=True):
        assert doc.metadata == {**hit.metadata, "id": hit.id, "score": hit.score}
        assert doc.id == hit.id
    assert all(d.metadata.get("audience", "public") == "public" for d in docs)


def test_the_passage_a_reply_cites_is_returned(search_bot: Assistant) -> None:
    reply = search_bot.respond("as-retriever-cited", LOST_CARD)
    assert reply.route == "rag" and reply.citations
    cited = reply.citations[0]

    docs = search_bot.as_retriever().invoke(LOST_CARD)

    matching = [d for d in docs if d.metadata["source"] == cited.source]
    assert matching
    assert any(d.page_content.startswith(cited.snippet.removesuffix("…")) for d in matching)
    assert any(round(d.metadata["score"], 4) == cited.score for d in matching)


def test_k_limits_the_documents(search_bot: Assistant) -> None:
    everything = search_bot.as_retriever().invoke(LOST_CARD)
    assert len(everything) > 1

    one = search_bot.as_retriever(k=1).invoke(LOST_CARD)

    assert one == everything[:1]


def test_async_invoke_returns_the_same_documents(search_bot: Assistant) -> None:
    retriever = search_bot.as_retriever()

    docs = asyncio.run(retriever.ainvoke(LOST_CARD))

    assert docs and docs == retriever.invoke(LOST_CARD)


def test_unrelated_question_finds_no_evidence(search_bot: Assistant) -> None:
    assert search_bot.as_retriever().invoke("Who won the football world cup in 1966?") == []


def test_composes_in_a_langchain_chain(search_bot: Assistant) -> None:
    def context(docs: list[Document]) -> str:
        return "\n\n".join(f"[{d.metadata['source']}] {d.page_content}" for d in docs)

    chain = search_bot.as_retriever(k=2) | RunnableLambda(context)

    text = chain.invoke("How do I freeze my debit card?")

    assert "[cards/freeze-and-unfreeze-card.md]" in text


def test_staff_only_passages_need_internal(bot: Assistant) -> None:
    (bot.root / bot.config.knowledge.dir / "staff").mkdir()
    (bot.root / bot.config.knowledge.dir / "staff" / "waive-card-fee.md").write_text(STAFF_NOTE)
    report = bot.ingest()
    assert report.added == ("staff/waive-card-fee.md",)

    customer = bot.as_retriever().invoke(STAFF_QUESTION)
    staff = bot.as_retriever(internal=True).invoke(STAFF_QUESTION)

    assert all(d.metadata["source"] != "staff/waive-card-fee.md" for d in customer)
    assert staff[0].metadata["source"] == "staff/waive-card-fee.md"
    assert staff[0].metadata["audience"] == "internal"
    assert "VC-7" in staff[0].page_content
