"""The keyword index and hybrid (dense + BM25, RRF) retrieval."""

from __future__ import annotations

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
    for source in bot.vector_store.sources():  # the keyword index is lost
        lexical.delete_source(source)
    assert lexical.count() == 0
    report = bot.ingest()  # and rebuilt with the store by the next ingest
    assert report.chunks_embedded == report.chunks_total and lexical.count() == report.chunks_total
    question = "What is the EAR on an arranged overdraft?"
    hits = bot.pipeline.retriever.run(embedder.embed_query(question), question)
    assert hits and all(h.score >= bot.config.rag.min_score for h in hits)
    assert any(h.metadata["source"].startswith("fees/") for h in hits)
    assert bot.ingest().chunks_embedded == 0


def test_keyword_search_prefers_chunks_with_every_term_and_keeps_audiences_apart(
    tmp_path: Path,
) -> None:
    index = LexicalIndex(tmp_path / "lexical.sqlite")
    index.replace_many(
        [
            ("a#0", "a.md", "Fees", "Overdraft fee for students", "public"),
            ("a#1", "a.md", "Fees", "Student accounts have no monthly fee", "public"),
            ("b#0", "b.md", "Refunds", "Refund an overdraft fee above 50 pounds", "internal"),
            ("c#0", "c.md", "Cards", "Replacement card fee", "public"),
        ]
    )
    # every term ("overdraft", "fee") in a#0 only; "any term" rows fill up to k
    assert [i for i, _ in index.query("overdraft fee", 1)] == ["a#0"]
    assert index.query("overdraft fee", 3)[0][0] == "a#0"
    assert {i for i, _ in index.query("overdraft fee", 3)} == {"a#0", "a#1", "c#0"}
    assert "b#0" in {i for i, _ in index.query("overdraft fee", 4, internal=True)}
    index.replace_source("b.md", ["b#1"], ["Refunds"], ["Refund limits"], ["internal"])
    assert index.count() == 4 and index.query("refund", 5) == []
    assert [i for i, _ in index.query("refund", 5, internal=True)] == ["b#1"]
