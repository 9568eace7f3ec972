"""The Northwind retrieval eval set through `cxbot eval rag`'s project mode: hybrid beats
dense and keyword retrieval, follow-ups keep their recall, and no customer search returns a
staff-only article (real MiniLM, Chroma, FTS5 on the sample knowledge)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cxbot.assistant import Assistant
from cxbot.evals.datasets import load_queries
from cxbot.evals.rag import evaluate_project_retrieval

QUERIES = Path("evals/northwind/retrieval/queries.jsonl")


def test_northwind_retrieval_eval(make_bot: Callable[..., Assistant], project: Path) -> None:
    queries = load_queries(project / QUERIES)
    report = evaluate_project_retrieval(make_bot(), queries)
    json.dumps(report)
    by_mode = report["by_mode"]
    recall = {mode: by_mode[mode]["recall@5"] for mode in by_mode}
    assert recall["hybrid"] > recall["dense"] and recall["hybrid"] > recall["lexical"], recall
    assert report["metrics"]["recall@5"] == recall["hybrid"]  # the default configuration

    follow = report["follow_ups"]
    assert follow["queries"] >= 15
    assert follow["with_context"]["recall@5"] >= 0.9 * follow["standalone"]["recall@5"]
    assert follow["with_context"]["recall@5"] > follow["question_only"]["recall@5"]

    acl = report["acl"]
    assert acl["queries_checked"] == len(queries)
    assert len(acl["internal_documents"]) >= 3
    assert acl["queries_exposed_without_filter"] > 0  # the filter is what keeps them out
    assert acl["internal_chunks_in_customer_results"] == 0
    cited = {doc for case in report["cases"] for doc in case["turns"][0]["citations"]}
    assert not any(doc.startswith("internal/") for doc in cited)
