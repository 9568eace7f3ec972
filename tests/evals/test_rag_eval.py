"""``cxbot eval rag``: retrieval metrics per mode on a JSONL corpus, follow-ups with context."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.evals.datasets import RetrievalQuery, load_corpus, load_queries
from cxbot.evals.rag import MODES, evaluate_project_retrieval, evaluate_retrieval, search_text
from cxbot.testing import StubLLMServer

CORPUS = [
    {
        "id": "d1",
        "title": "Premier account",
        "text": "The Premier account costs 15 pounds a month and includes travel insurance.",
    },
    {
        "id": "d2",
        "title": "Basic account",
        "text": "The Basic account has no monthly fee and no overdraft.",
    },
    {
        "id": "d3",
        "title": "Lost cards",
        "text": "Report a lost or stolen card in the app under Cards straight away.",
    },
    {
        "id": "d4",
        "title": "International payments",
        "text": "Payments abroad arrive within two working days; SWIFT code NWBKGB2L.",
    },
    {
        "id": "d5",
        "title": "Mortgages",
        "text": "An agreement in principle for a mortgage is valid for 90 days.",
    },
    {
        "id": "d6",
        "title": "Branch hours",
        "text": "Branches open 09:00 to 17:00 on weekdays and are closed at weekends.",
    },
]
QUERIES = [
    {"id": "q1", "question": "How much is the monthly fee for Premier?", "gold_ids": ["d1"]},
    {"id": "q2", "question": "I can't find my debit card", "gold_ids": ["d3"]},
    {"id": "q3", "question": "What is the SWIFT code NWBKGB2L used for?", "gold_ids": ["d4"]},
    {"id": "q4", "question": "does it include travel insurance?", "gold_ids": ["d1"],
     "context": ["U: Tell me about the Premier account", "S: It is our packaged account."],
     "standalone": "does the Premier account include travel insurance?"},
    {"id": "q5", "question": "Do you sell bitcoin?", "gold_ids": []},
]  # fmt: skip


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_retrieval_metrics_per_mode(embedder: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    report = evaluate_retrieval(
        load_corpus(_write(tmp_path / "corpus.jsonl", CORPUS)),
        load_queries(_write(tmp_path / "queries.jsonl", QUERIES)),
        embedder,
    )
    metrics = report["metrics"]
    assert {"hit@5", "recall@5", "mrr", "ndcg@10"} <= set(metrics)
    assert metrics["queries"] == 4 and metrics["unanswerable"] == 1
    known = report["answerability"]
    assert (known["answerable"], known["unanswerable"]) == (4, 1)
    assert known["answered"] == round(metrics["answered_rate"] * 4)
    assert metrics["dont_know_rate"] == 1.0  # nothing about bitcoin is close to any passage
    curve = {row["min_score"]: row for row in known["curve"]}
    assert curve[0.2]["answered_rate"] >= curve[0.8]["answered_rate"]
    assert curve[0.2]["dont_know_rate"] <= curve[0.8]["dont_know_rate"]
    follow = report["follow_ups"]
    assert follow["queries"] == 1 and follow["with_context"]["hit@5"] == 1.0
    assert follow["ratio"] == 1.0
    assert set(report["by_mode"]) == set(MODES)
    assert report["by_mode"]["dense"] == {k: metrics[k] for k in report["by_mode"]["dense"]}
    for scores in report["by_mode"].values():
        assert 0.0 <= scores["ndcg@10"] <= 1.0
    assert report["by_mode"]["hybrid"]["mrr"] >= 0.75
    cases = {c["id"]: c for c in report["cases"]}
    assert cases["q3"]["turns"][0]["citations"][0] == "d4"
    json.dumps(report)


def test_follow_up_is_searched_with_the_customers_last_turn() -> None:
    query = RetrievalQuery(
        "q", "does it include insurance?", ("d1",), ("U: Tell me about Premier", "S: Sure.")
    )
    assert search_text(query) == "Tell me about Premier does it include insurance?"
    assert search_text(RetrievalQuery("q", "hello", ())) == "hello"


def test_with_an_llm_dont_know_is_the_models_refusal(
    make_bot: Callable[..., Assistant], tmp_path: Path
) -> None:
    rows = [
        {"id": "a1", "question": "How do I report a stolen card?",
         "gold_ids": ["cards/lost-or-stolen-card.md"]},
        {"id": "a2", "question": "How do I change my PIN?",
         "gold_ids": ["cards/change-your-pin.md"]},
        {"id": "u1", "question": "Can I get a card for my bitcoin wallet?", "gold_ids": []},
    ]  # fmt: skip
    queries = load_queries(_write(tmp_path / "queries.jsonl", rows))
    with StubLLMServer() as server:
        bot = make_bot(
            env={
                "CXBOT_LLM__BASE_URL": server.base_url,
                "CXBOT_LLM__MODEL": "stub",
                "CXBOT_LLM_API_KEY": "test",
                "CXBOT_LLM__MAX_RETRIES": "0",
            }
        )
        # one answer request per query that retrieval found evidence for, in order
        server.script("Report it in the app [1].", "I don't know.", "I don't know.")
        report = evaluate_project_retrieval(bot, queries)
        asked = [r.last_user for r in server.requests]
    known = report["answerability"]
    assert known["judged_by"] == "llm"
    assert len(asked) == 3 and "stolen card" in asked[0] and "bitcoin" in asked[2]
    assert (known["answered"], known["dont_know"]) == (1, 1)
    assert report["metrics"]["answered_rate"] == 0.5
