"""Retrieval evals (``cxbot eval rag``): recall@k, MRR and nDCG@10 per mode, follow-ups,
"I don't know" and access control.

Two sources of passages:

- a corpus (``corpus.jsonl``: id, title, text, …metadata), embedded into a temporary Chroma
  store and SQLite FTS5 index, one passage per line (:func:`evaluate_retrieval`);
- a project's own knowledge folder, ingested by the real ingest into temporary stores and
  ranked by document (a gold id is a document path; its chunks count once, at the rank of
  the best) (:func:`evaluate_project_retrieval`).

Every query is ranked three ways — ``dense`` (MiniLM + Chroma), ``lexical`` (BM25) and
``hybrid`` (reciprocal-rank fusion of the two) — and the top-level metrics are those of the
default configuration's mode. A query with ``context`` (earlier turns, ``"U: "``/``"S: "``)
is searched as a live conversation searches it: the offline query rewriter of
:mod:`cxbot.rag.rewrite` decides whether it is a follow-up and joins what it refers to.
Follow-ups that also carry a ``standalone`` wording are scored both ways (``follow_ups``).
Queries without gold ids are unanswerable: the report counts how often the customer would
get "I don't know" for them and an answer for the answerable ones (``answerability``) —
offline, an answer needs evidence at or above ``rag.min_score`` (with the curve over other
thresholds); with a chat model configured (project mode), it needs the model not to refuse.
In project mode, every result list is also checked for staff-only chunks (``acl``): none
may reach a customer's search.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.embeddings import embed_passages
from cxbot.evals.datasets import CorpusDoc, RetrievalQuery
from cxbot.evals.runner import single_suite_report
from cxbot.rag.rewrite import standalone_query
from cxbot.rag.store import PUBLIC

if TYPE_CHECKING:
    from cxbot.assistant import Assistant
    from cxbot.embeddings import Embedder, Vector
    from cxbot.rag.answer import Answerer
    from cxbot.rag.lexical import LexicalIndex
    from cxbot.rag.retriever import Retriever
    from cxbot.rag.store import Hit

__all__ = ["MODES", "evaluate_project_retrieval", "evaluate_retrieval", "search_text"]

MODES = ("dense", "lexical", "hybrid")
DEPTH = 10
CHUNK_DEPTH = 40
"""Chunks ranked per query in project mode, to fill DEPTH distinct documents."""


def _history(context: Sequence[str]) -> list[tuple[str, str]]:
    return [("user" if turn.startswith("U: ") else "bot", turn[3:]) for turn in context]


def search_text(query: RetrievalQuery) -> str:
    """What a live conversation would search for this query (follow-ups rewritten)."""
    return standalone_query(query.question, _history(query.context))


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


@dataclass
class _Searcher:
    """Ranks ids (passages or documents) for a query in each mode."""

    dense: Retriever
    hybrid: Retriever
    lexical: LexicalIndex
    evidence: Retriever
    """The default configuration: an empty result means "I don't know"."""
    by_document: bool
    depth: int
    internal_hits: int = 0
    """Staff-only chunks found in customer results (must stay 0)."""

    def ranked(self, mode: str, vector: Vector, text: str) -> list[str]:
        if mode == "lexical":
            pairs = self.lexical.query(text, self.depth)
            return self._ids([i for i, _ in pairs], [])
        retriever = self.dense if mode == "dense" else self.hybrid
        hits = retriever.rank(vector, text, depth=self.depth)
        return self._ids([h.id for h in hits], hits)

    def _ids(self, chunk_ids: list[str], hits: Sequence[Hit]) -> list[str]:
        self.internal_hits += sum(h.metadata.get("audience", PUBLIC) != PUBLIC for h in hits)
        if not self.by_document:
            return chunk_ids[:DEPTH]
        sources = [str(h.metadata.get("source", h.id)) for h in hits] or [
            i.split("#", 1)[0] for i in chunk_ids
        ]
        return list(dict.fromkeys(sources))[:DEPTH]


def evaluate_retrieval(
    corpus: Sequence[CorpusDoc],
    queries: Sequence[RetrievalQuery],
    embedder: Embedder,
    *,
    default_mode: str = "dense",
    keyword_weight: float = 0.5,
    min_score: float = 0.35,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Retrieval metrics of ``queries`` over a corpus of passages (ids are passage ids)."""
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
                embed_passages(embedder, chunk),
                chunk,
                [{"source": d.id, "title": d.title, "audience": PUBLIC} for d in docs],
            )
        lexical.replace_many(
            [(d.id, d.id, d.title, text) for d, text in zip(corpus, texts, strict=True)]
        )
        ingest_seconds = time.perf_counter() - begin

        def retriever(hybrid: bool, floor: float) -> Retriever:
            return Retriever(
                store,
                lexical=lexical,
                hybrid=hybrid,
                min_score=floor,
                candidates=DEPTH * 3,
                keyword_weight=keyword_weight,
            )

        searcher = _Searcher(
            dense=retriever(False, -1.0),
            hybrid=retriever(True, -1.0),
            lexical=lexical,
            evidence=retriever(default_mode == "hybrid", min_score),
            by_document=False,
            depth=DEPTH,
        )
        report = _evaluate(searcher, queries, embedder, default_mode, say)
        lexical.close()
    return _report(
        report,
        started=started,
        seconds=time.perf_counter() - begin,
        ingest_seconds=ingest_seconds,
        config={
            "source": "corpus",
            "default_mode": default_mode,
            "keyword_weight": keyword_weight,
            "min_score": min_score,
            "depth": DEPTH,
        },
    )


def evaluate_project_retrieval(
    bot: Assistant,
    queries: Sequence[RetrievalQuery],
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Retrieval metrics of ``queries`` over ``bot``'s knowledge, ranked by document.

    ``bot`` must run on stores that may be written (an ingest runs first; use a project copy
    or temporary storage). Its retriever's settings are the default mode's.
    """
    say = progress or (lambda _: None)
    started = datetime.now(UTC)
    begin = time.perf_counter()
    say("ingesting the knowledge folder")
    ingest = bot.ingest()
    ingest_seconds = time.perf_counter() - begin
    live = bot.pipeline.retriever
    if live.lexical is None:
        raise ValueError("the project's retriever has no keyword index")
    rag = bot.config.rag
    default_mode = "hybrid" if rag.hybrid else "dense"

    def ranking(hybrid: bool) -> Retriever:
        from cxbot.rag.retriever import Retriever

        return Retriever(
            live.store,
            lexical=live.lexical,
            hybrid=hybrid,
            min_score=-1.0,
            candidates=max(live.candidates, CHUNK_DEPTH),
            keyword_weight=live.keyword_weight,
        )

    searcher = _Searcher(
        dense=ranking(False),
        hybrid=ranking(True),
        lexical=live.lexical,
        evidence=live,
        by_document=True,
        depth=CHUNK_DEPTH,
    )
    answerer = bot.pipeline.answerer if bot.deps.chat_model is not None else None
    report = _evaluate(searcher, queries, bot.deps.embedder, default_mode, say, answerer)
    report.extra["answerability"]["judged_by"] = "llm" if answerer else "retrieval evidence"
    # the same questions with staff-only chunks allowed: what the access filter keeps out
    exposed = 0
    for query, vector in zip(report.answerable, report.vectors, strict=True):
        hits = searcher.hybrid.rank(vector, query.question, depth=5, internal=True)
        exposed += any(h.metadata.get("audience", PUBLIC) != PUBLIC for h in hits)
    internal_docs = sorted(
        source for source in bot.vector_store.sources() if source.startswith("internal/")
    )
    report.extra["acl"] = {
        "internal_chunks_in_customer_results": searcher.internal_hits,
        "queries_checked": len(queries),
        "queries_exposed_without_filter": exposed,
        "internal_documents": internal_docs,
    }
    return _report(
        report,
        started=started,
        seconds=time.perf_counter() - begin,
        ingest_seconds=ingest_seconds,
        config={
            "source": "project",
            "project": str(bot.root),
            "default_mode": default_mode,
            "keyword_weight": rag.keyword_weight,
            "min_score": rag.min_score,
            "depth": DEPTH,
            "documents": len(ingest.added) + len(ingest.updated) + ingest.unchanged,
            "chunks": ingest.chunks_total,
        },
    )


@dataclass
class _Outcome:
    answerable: list[RetrievalQuery]
    vectors: list[Vector]
    by_mode: dict[str, list[dict[str, float]]]
    cases: list[dict[str, Any]]
    metrics: dict[str, float]
    extra: dict[str, Any]
    query_seconds: float


class _Conversation:
    """Searches a query the way a live conversation does (offline rewriter, evidence choice)."""

    def __init__(
        self, searcher: _Searcher, embedder: Embedder, answerer: Answerer | None = None
    ) -> None:
        from cxbot.rag.rewrite import QueryRewriter

        self.searcher = searcher
        self.embedder = embedder
        self.rewriter = QueryRewriter()
        self.answerer = answerer
        """When given (a project with a chat model), "answered" means the model answered
        rather than refusing; otherwise it means the retriever found evidence."""

    def search(self, query: RetrievalQuery, vector: Vector) -> tuple[str, Vector, bool]:
        """The text and vector searched, and whether the customer gets an answer."""
        history = _history(query.context)
        if history:
            text, chosen, hits = self.rewriter.search(
                query.question,
                vector,
                history,
                embed=self.embedder.embed_query,
                retrieve=self.searcher.evidence.run,
            )
        else:
            text, chosen = query.question, vector
            hits = self.searcher.evidence.run(vector, text)
        if self.answerer is not None and hits:
            return text, chosen, self.answerer.run(text, chosen, hits, {}) is not None
        return text, chosen, bool(hits)


def _evaluate(
    searcher: _Searcher,
    queries: Sequence[RetrievalQuery],
    embedder: Embedder,
    default_mode: str,
    say: Callable[[str], None],
    answerer: Answerer | None = None,
) -> _Outcome:
    say(f"searching {len(queries)} queries")
    searched = time.perf_counter()
    conversation = _Conversation(searcher, embedder, answerer)
    asked = list(embedder.embed_documents([q.question for q in queries])) if queries else []
    by_mode: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    cases = []
    answerable: list[RetrievalQuery] = []
    answerable_vectors: list[Vector] = []
    answered = refused = 0
    evidence_scores: list[tuple[bool, float]] = []
    for query, question_vector in zip(queries, asked, strict=True):
        text, vector, has_evidence = conversation.search(query, question_vector)
        top = searcher.evidence.rank(vector, text, depth=searcher.evidence.top_k)
        evidence_scores.append((bool(query.gold_ids), max((h.score for h in top), default=-1.0)))
        if not query.gold_ids:
            refused += not has_evidence
            cases.append(_refusal_case(query, has_evidence))
            continue
        answered += has_evidence
        answerable.append(query)
        answerable_vectors.append(vector)
        ranked = {mode: searcher.ranked(mode, vector, text) for mode in MODES}
        gold = set(query.gold_ids)
        scores = {mode: _scores(ranked[mode], gold) for mode in MODES}
        for mode in MODES:
            by_mode[mode].append(scores[mode])
        cases.append(_case(query, ranked[default_mode], scores[default_mode], default_mode))
    follow_ups = _follow_ups(conversation, queries, default_mode)
    unanswerable = len(queries) - len(answerable)
    summary = {mode: _mean(rows) for mode, rows in by_mode.items()}
    metrics = {
        **summary[default_mode],
        "pass_rate": summary[default_mode]["hit@5"],
        "queries": float(len(answerable)),
        "unanswerable": float(unanswerable),
        "answered_rate": round(answered / len(answerable), 4) if answerable else 0.0,
        "dont_know_rate": round(refused / unanswerable, 4) if unanswerable else 0.0,
    }
    return _Outcome(
        answerable=answerable,
        vectors=answerable_vectors,
        by_mode=by_mode,
        cases=cases,
        metrics=metrics,
        extra={
            "by_mode": summary,
            "follow_ups": follow_ups,
            "answerability": {
                "answerable": len(answerable),
                "answered": answered,
                "unanswerable": unanswerable,
                "dont_know": refused,
                "min_score": searcher.evidence.min_score,
                "curve": _answerability_curve(evidence_scores),
            },
        },
        query_seconds=time.perf_counter() - searched,
    )


def _answerability_curve(scores: Sequence[tuple[bool, float]]) -> list[dict[str, float]]:
    """Answered (answerable) and "don't know" (unanswerable) rates if the evidence threshold
    (``rag.min_score``) were each value from 0.20 to 0.80."""
    good = [s for answerable, s in scores if answerable]
    bad = [s for answerable, s in scores if not answerable]
    curve = []
    for step in range(20, 81, 5):
        floor = step / 100
        curve.append(
            {
                "min_score": floor,
                "answered_rate": round(sum(s >= floor for s in good) / len(good), 4)
                if good
                else 0.0,
                "dont_know_rate": round(sum(s < floor for s in bad) / len(bad), 4) if bad else 0.0,
            }
        )
    return curve


def _follow_ups(
    conversation: _Conversation, queries: Sequence[RetrievalQuery], mode: str
) -> dict[str, Any]:
    """Recall@5 of follow-ups searched in their conversation, written out standalone, and
    (for reference) as asked with no conversation at all."""
    pairs = [(q, q.standalone) for q in queries if q.gold_ids and q.context and q.standalone]
    if not pairs:
        return {"queries": 0}
    embedder = conversation.embedder
    searcher = conversation.searcher
    asked = embedder.embed_documents([q.question for q, _ in pairs])
    standalone = embedder.embed_documents([s for _, s in pairs])
    ways: dict[str, list[tuple[str, Vector]]] = {
        "with_context": [
            conversation.search(q, v)[:2] for (q, _), v in zip(pairs, asked, strict=True)
        ],
        "standalone": [(s, v) for (_, s), v in zip(pairs, standalone, strict=True)],
        "question_only": [(q.question, v) for (q, _), v in zip(pairs, asked, strict=True)],
    }
    result: dict[str, Any] = {"queries": len(pairs), "mode": mode}
    for way, searches in ways.items():
        rows = [
            _scores(searcher.ranked(mode, vector, text), set(q.gold_ids))
            for (q, _), (text, vector) in zip(pairs, searches, strict=True)
        ]
        result[way] = _mean(rows)
    alone = result["standalone"]["recall@5"]
    result["ratio"] = round(result["with_context"]["recall@5"] / alone, 4) if alone else 0.0
    return result


def _report(
    outcome: _Outcome,
    *,
    started: datetime,
    seconds: float,
    ingest_seconds: float,
    config: dict[str, Any],
) -> dict[str, Any]:
    return single_suite_report(
        suite="rag",
        project=str(config.get("project", "rag")),
        started=started,
        seconds=seconds,
        cases=outcome.cases,
        metrics=outcome.metrics,
        timings={
            "ingest_seconds": round(ingest_seconds, 2),
            "query_seconds": round(outcome.query_seconds, 2),
        },
        config=config,
        **outcome.extra,
    )


def _refusal_case(query: RetrievalQuery, has_evidence: bool) -> dict[str, Any]:
    return _case_record(
        query,
        ["unanswerable"],
        [],
        metric="don't know",
        passed=not has_evidence,
        expected="no evidence",
        got="evidence found" if has_evidence else "no evidence",
    )


def _case(
    query: RetrievalQuery, ranked: Sequence[str], scores: dict[str, float], mode: str
) -> dict[str, Any]:
    return _case_record(
        query,
        ["follow-up"] if query.context else [],
        list(ranked[:5]),
        metric=f"{mode} hit@5",
        passed=scores["hit@5"] == 1.0,
        expected=list(query.gold_ids),
        got=list(ranked[:5]),
    )


def _case_record(
    query: RetrievalQuery,
    tags: list[str],
    citations: list[str],
    *,
    metric: str,
    passed: bool,
    expected: Any,
    got: Any,
) -> dict[str, Any]:
    """One query as a case of the eval report (the format of :mod:`cxbot.evals.runner`)."""
    check = {
        "evaluator": "retrieval",
        "metric": metric,
        "passed": passed,
        "expected": expected,
        "got": got,
    }
    turn = {
        "user": query.question,
        "reply": "",
        "route": "rag",
        "intent": None,
        "confidence": 0.0,
        "citations": citations,
        "handoff": False,
        "checks": [check],
    }
    return {
        "key": f"rag/{query.id}",
        "suite": "rag",
        "id": query.id,
        "title": "",
        "tags": tags,
        "passed": passed,
        "error": None,
        "turns": [turn],
    }
