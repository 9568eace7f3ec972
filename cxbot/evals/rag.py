"""Retrieval evals on any corpus (``cxbot eval rag``): recall@k, MRR and nDCG@10 per mode.

The corpus (``corpus.jsonl``: id, title, text, …metadata) is embedded into a temporary
Chroma store and SQLite FTS5 index, one passage per line. Every query is run three ways —
``dense`` (MiniLM + Chroma), ``lexical`` (BM25) and ``hybrid`` (reciprocal-rank fusion of
the two, as ``rag.hybrid`` does) — and the top-level metrics are those of the default
configuration's mode. A query with ``context`` (earlier turns, ``"U: "``/``"S: "``) is
searched together with the customer's last earlier turn, so a follow-up ("does it…")
carries the entity it refers to.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.evals.datasets import CorpusDoc, RetrievalQuery
from cxbot.evals.runner import single_suite_report

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder

__all__ = ["MODES", "evaluate_retrieval", "search_text"]

MODES = ("dense", "lexical", "hybrid")
DEPTH = 10


def search_text(query: RetrievalQuery) -> str:
    """The question, preceded by the customer's last earlier turn when there is one."""
    earlier = [c[3:] for c in query.context if c.startswith("U: ")]
    return f"{earlier[-1]} {query.question}" if earlier else query.question


def _scores(ranked: Sequence[str], gold: set[str]) -> dict[str, float]:
    top5 = ranked[:5]
    first = next((i for i, doc in enumerate(ranked[:DEPTH], start=1) if doc in gold), None)
    dcg = sum(1 / math.log2(i + 1) for i, doc in enumerate(ranked[:DEPTH], start=1) if doc in gold)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(gold), DEPTH) + 1))
    return {
        "hit@5": float(any(doc in gold for doc in top5)),
        "recall@5": len(gold & set(top5)) / len(gold),
        "mrr": 1 / first if first else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def _mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {"hit@5": 0.0, "recall@5": 0.0, "mrr": 0.0, "ndcg@10": 0.0}
    return {key: round(sum(r[key] for r in rows) / len(rows), 4) for key in rows[0]}


def evaluate_retrieval(
    corpus: Sequence[CorpusDoc],
    queries: Sequence[RetrievalQuery],
    embedder: Embedder,
    *,
    default_mode: str = "dense",
    keyword_weight: float = 0.5,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    from cxbot.rag.lexical import LexicalIndex
    from cxbot.rag.retriever import Retriever
    from cxbot.rag.store import ChromaStore

    say = progress or (lambda _: None)
    started = datetime.now(UTC)
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cxbot-eval-rag-") as folder:
        store = ChromaStore(Path(folder) / "chroma")
        lexical = LexicalIndex(Path(folder) / "lexical.sqlite")
        texts = [f"{d.title}\n{d.text}" if d.title else d.text for d in corpus]
        say(f"embedding {len(corpus)} passages")
        batch = 512
        for start in range(0, len(corpus), batch):
            docs = corpus[start : start + batch]
            chunk = texts[start : start + batch]
            store.upsert(
                [d.id for d in docs],
                embedder.embed_documents(chunk),
                chunk,
                [{"source": d.id, "title": d.title} for d in docs],
            )
        lexical.replace_many(
            [(d.id, d.id, d.title, text) for d, text in zip(corpus, texts, strict=True)]
        )
        ingest_seconds = time.perf_counter() - begin
        hybrid = Retriever(
            store, lexical=lexical, min_score=-1.0, candidates=DEPTH * 3,
            keyword_weight=keyword_weight,
        )  # fmt: skip
        say(f"searching {len(queries)} queries")
        searched = time.perf_counter()
        answerable = [q for q in queries if q.gold_ids]
        vectors = embedder.embed_documents([search_text(q) for q in answerable])
        by_mode: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        cases = []
        for query, vector in zip(answerable, vectors, strict=True):
            text = search_text(query)
            ranked = {
                "dense": [h.id for h in store.query(vector, DEPTH)],
                "lexical": [i for i, _ in lexical.query(text, DEPTH)],
                "hybrid": [h.id for h in hybrid.run(vector, text, k=DEPTH)],
            }
            gold = set(query.gold_ids)
            scores = {mode: _scores(ranked[mode], gold) for mode in MODES}
            for mode in MODES:
                by_mode[mode].append(scores[mode])
            cases.append(_case(query, ranked[default_mode], scores[default_mode], default_mode))
        lexical.close()
        query_seconds = time.perf_counter() - searched
    summary = {mode: _mean(rows) for mode, rows in by_mode.items()}
    metrics = {
        **summary[default_mode],
        "pass_rate": summary[default_mode]["hit@5"],
        "queries": float(len(answerable)),
        "unanswerable_skipped": float(len(queries) - len(answerable)),
    }
    return single_suite_report(
        suite="rag",
        project="rag",
        started=started,
        seconds=time.perf_counter() - begin,
        cases=cases,
        metrics=metrics,
        timings={
            "ingest_seconds": round(ingest_seconds, 2),
            "query_seconds": round(query_seconds, 2),
        },
        by_mode=summary,
        config={"default_mode": default_mode, "keyword_weight": keyword_weight, "depth": DEPTH},
    )


def _case(
    query: RetrievalQuery, ranked: Sequence[str], scores: dict[str, float], mode: str
) -> dict[str, Any]:
    passed = scores["hit@5"] == 1.0
    return {
        "key": f"rag/{query.id}",
        "suite": "rag",
        "id": query.id,
        "title": "",
        "tags": ["follow-up"] if query.context else [],
        "passed": passed,
        "error": None,
        "turns": [
            {
                "user": query.question,
                "reply": "",
                "route": "rag",
                "intent": None,
                "confidence": 0.0,
                "citations": list(ranked[:5]),
                "handoff": False,
                "checks": [
                    {
                        "evaluator": "retrieval",
                        "metric": f"{mode} hit@5",
                        "passed": passed,
                        "expected": list(query.gold_ids),
                        "got": list(ranked[:5]),
                    }
                ],
            }
        ],
    }
