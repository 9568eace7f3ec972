"""Intent-classification evals on external CSV data (e.g. Banking77): ``cxbot eval nlu``.

Trains the default classifier (nearest examples over MiniLM) from TRAIN — all of it or N
examples per intent — picks the out-of-scope threshold on a held-out split of TRAIN only
(the score that keeps 95% of held-out in-scope messages), and scores TEST. Test rows whose
category is ``oos`` are out of scope. The report has the format of ``cxbot eval``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cxbot.evals.datasets import IntentExample
from cxbot.evals.evaluators import NONE
from cxbot.evals.runner import single_suite_report
from cxbot.nlu.intent import IntentClassifier

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder

__all__ = ["OOS", "evaluate_intents"]

OOS = "oos"
KEEP_IN_SCOPE = 0.95
"""Share of held-out in-scope training messages the chosen threshold keeps."""


def _few_shot(
    train: Sequence[IntentExample], shots: int, rng: random.Random
) -> list[IntentExample]:
    by_label: dict[str, list[IntentExample]] = {}
    for example in train:
        by_label.setdefault(example.label, []).append(example)
    chosen: list[IntentExample] = []
    for label in sorted(by_label):
        rows = by_label[label]
        chosen += rng.sample(rows, min(shots, len(rows)))
    return chosen


def _macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    labels = sorted(set(gold) | set(predicted))
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def evaluate_intents(
    train: Sequence[IntentExample],
    test: Sequence[IntentExample],
    embedder: Embedder,
    *,
    shots: int | None = None,
    seed: int = 0,
    neighbours: int = 3,
    holdout: float = 0.1,
) -> dict[str, Any]:
    import numpy as np

    started = datetime.now(UTC)
    begin = time.perf_counter()
    rng = random.Random(seed)
    rows = [r for r in train if r.label != OOS]
    if shots is not None:
        rows = _few_shot(rows, shots, rng)
    order = list(range(len(rows)))
    rng.shuffle(order)
    per_label = Counter(r.label for r in rows)
    held: list[int] = []
    taken: Counter[str] = Counter()
    for index in order:  # hold out up to `holdout` of each intent, keeping at least one example
        label = rows[index].label
        if taken[label] < int(per_label[label] * holdout):
            held.append(index)
            taken[label] += 1
    kept = [i for i in order if i not in set(held)]
    vectors = embedder.embed_documents([r.text for r in rows])
    fit = IntentClassifier.from_vectors(
        [rows[i].label for i in kept], vectors[kept], embedder, neighbours=neighbours
    )
    threshold = 0.0
    if held:
        _, held_scores = fit.score_matrix(vectors[held])
        threshold = float(np.quantile(held_scores.max(axis=1), 1 - KEEP_IN_SCOPE))
    model = IntentClassifier.from_vectors(
        [r.label for r in rows], vectors, embedder, threshold=threshold, neighbours=neighbours
    )
    train_seconds = time.perf_counter() - begin

    test_vectors = embedder.embed_documents([r.text for r in test])
    names, scores = model.score_matrix(test_vectors)
    best = scores.argmax(axis=1)
    confidence = scores.max(axis=1)
    predicted = [names[b] if c >= threshold else OOS for b, c in zip(best, confidence, strict=True)]
    gold = [r.label for r in test]
    correct = [g == p for g, p in zip(gold, predicted, strict=True)]
    in_scope = [c for c, g in zip(correct, gold, strict=True) if g != OOS]
    oos = [c for c, g in zip(correct, gold, strict=True) if g == OOS]
    metrics: dict[str, float] = {
        "accuracy": round(sum(correct) / len(correct), 4) if correct else 0.0,
        "in_scope_accuracy": round(sum(in_scope) / len(in_scope), 4) if in_scope else 0.0,
        "macro_f1": round(_macro_f1(gold, predicted), 4),
        "pass_rate": round(sum(correct) / len(correct), 4) if correct else 0.0,
        "threshold": round(threshold, 4),
        "train_seconds": round(train_seconds, 2),
    }
    if oos:
        metrics["oos_recall"] = round(sum(oos) / len(oos), 4)

    def shown(name: str) -> str:
        return NONE if name == OOS else name

    cases = [
        {
            "key": f"nlu/{i}",
            "suite": "nlu",
            "id": str(i),
            "title": "",
            "tags": [],
            "passed": ok,
            "error": None,
            "turns": [
                {
                    "user": row.text,
                    "reply": "",
                    "route": None,
                    "intent": None if p == OOS else p,
                    "confidence": round(float(c), 4),
                    "citations": [],
                    "handoff": False,
                    "checks": [
                        {
                            "evaluator": "intent",
                            "metric": "intent_accuracy",
                            "passed": ok,
                            "expected": shown(row.label),
                            "got": shown(p),
                        }
                    ],
                }
            ],
        }
        for i, (row, p, c, ok) in enumerate(zip(test, predicted, confidence, correct, strict=True))
    ]
    return single_suite_report(
        suite="nlu",
        project="nlu",
        started=started,
        seconds=time.perf_counter() - begin,
        cases=cases,
        metrics=metrics,
        predictions=[
            {
                "case": f"nlu/{i}",
                "gold": shown(g),
                "predicted": shown(p),
                "confidence": round(float(c), 4),
            }
            for i, (g, p, c) in enumerate(zip(gold, predicted, confidence, strict=True))
        ],
        seed=seed,
        timings={"train_seconds": round(train_seconds, 2)},
        config={"shots": shots, "neighbours": neighbours, "train_rows": len(rows)},
    )
