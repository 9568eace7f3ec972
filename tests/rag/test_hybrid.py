"""The keyword index and hybrid (dense + BM25, RRF) retrieval."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.rag.lexical import LexicalIndex


def test_bm25_ranks_the_chunk_with_the_rare_words_first(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical.sqlite")
    index.replace_source(
        "a.md", ["a#0", "a#1"], ["Fees", "Fees"], ["Overdraft rate 39.9% EAR", "Monthly fees"]
    )
    index.replace_source("b.md", ["b#0"], ["Cards"], ["Contactless limit is £100"])
    assert index.query("what is the overdraft rate?", 5)[0][0] == "a#0"
    assert index.query("the of and", 5) == []
    index.replace_source("a.md", ["a#9"], ["Fees"], ["Rewritten"])
    assert index.count() == 2
    index.delete_source("b.md")
    assert index.query("contactless", 5) == []


def test_hybrid_assistant_indexes_and_retrieves(
    make_bot: Callable[..., Assistant], embedder: SentenceTransformerEmbedder
) -> None:
    bot = make_bot(env={"CXBOT_RAG__HYBRID": "true"})
    lexical = bot.pipeline.retriever.lexical
    assert lexical is not None and lexical.count() == bot.vector_store.count() > 0
    with sqlite3.connect(lexical.path) as conn:  # the keyword index is lost
        conn.execute("DELETE FROM chunks")
    report = bot.ingest()  # and rebuilt with the store by the next ingest
    assert report.chunks_embedded == report.chunks_total and lexical.count() == report.chunks_total
    question = "What is the EAR on an arranged overdraft?"
    hits = bot.pipeline.retriever.run(embedder.embed_query(question), question)
    assert hits and all(h.score >= bot.config.rag.min_score for h in hits)
    assert any(h.metadata["source"].startswith("fees/") for h in hits)
    assert bot.ingest().chunks_embedded == 0
