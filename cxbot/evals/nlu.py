"""Intent-classification evals on external CSV data (e.g. Banking77): ``cxbot eval nlu``.

Trains the default intent model (:mod:`cxbot.nlu.training`: a linear head on the shared
vector plus fine-tuned top encoder layers) from TRAIN — all of it or N examples per intent —
with the out-of-scope threshold chosen on a held-back split of TRAIN only, and scores TEST.
Test rows whose category is ``oos`` are out of scope; ``unknown_intents`` holds K intents
out of training and relabels their test rows ``oos``. The report has the format of
``cxbot eval`` plus ``oos_curve``: in-scope accuracy and out-of-scope recall per threshold.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cxbot.embeddings import encode_many
from cxbot.evals.datasets import IntentExample
from cxbot.evals.evaluators import NONE
from cxbot.evals.runner import single_suite_report
from cxbot.nlu.model import TrainingSettings
from cxbot.nlu.training import KEEP_IN_SCOPE, train_intent_model

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder, Matrix

__all__ = ["OOS", "evaluate_intents", "oos_curve"]

OOS = "oos"
CURVE = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


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


def oos_curve(
    gold: Sequence[str],
    best: Sequence[str],
    confidence: Sequence[float],
    thresholds: Sequence[float],
) -> list[dict[str, float]]:
    """In-scope accuracy, out-of-scope recall and accuracy at each threshold."""
    rows = []
    for threshold in thresholds:
        predicted = [b if c >= threshold else OOS for b, c in zip(best, confidence, strict=True)]
        ok = [g == p for g, p in zip(gold, predicted, strict=True)]
        inside = [o for o, g in zip(ok, gold, strict=True) if g != OOS]
        outside = [o for o, g in zip(ok, gold, strict=True) if g == OOS]
        row = {
            "threshold": round(float(threshold), 4),
            "accuracy": round(sum(ok) / len(ok), 4) if ok else 0.0,
            "in_scope_accuracy": round(sum(inside) / len(inside), 4) if inside else 0.0,
        }
        if outside:
            row["oos_recall"] = round(sum(outside) / len(outside), 4)
        rows.append(row)
    return rows


def evaluate_intents(
    train: Sequence[IntentExample],
    test: Sequence[IntentExample],
    embedder: Embedder,
    *,
    shots: int | None = None,
    seed: int = 0,
    unknown_intents: int = 0,
    settings: TrainingSettings | None = None,
    keep_in_scope: float = KEEP_IN_SCOPE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    import numpy as np

    started = datetime.now(UTC)
    begin = time.perf_counter()
    rng = random.Random(seed)
    rows = [r for r in train if r.label != OOS]
    unknown: list[str] = []
    if unknown_intents:
        unknown = sorted(rng.sample(sorted({r.label for r in rows}), unknown_intents))
        rows = [r for r in rows if r.label not in set(unknown)]
        test = [IntentExample(r.text, OOS if r.label in set(unknown) else r.label) for r in test]
    if shots is not None:
        rows = _few_shot(rows, shots, rng)
    settings = settings or TrainingSettings(seed=seed)
    model, training = train_intent_model(
        [r.text for r in rows],
        [r.label for r in rows],
        embedder,
        settings=settings,
        keep_in_scope=keep_in_scope,
        progress=progress,
    )
    threshold = model.threshold
    train_seconds = time.perf_counter() - begin

    if progress:
        progress(f"scoring {len(test)} test messages")
    features = encode_many(embedder, [r.text for r in test], model.first_tuned_layer)
    scores: Matrix = model.probabilities(features)
    names = model.labels
    best_index = scores.argmax(axis=1)
    confidence = scores.max(axis=1)
    best = [names[b] for b in best_index]
    predicted = [b if c >= threshold else OOS for b, c in zip(best, confidence, strict=True)]
    gold = [r.label for r in test]
    correct = [g == p for g, p in zip(gold, predicted, strict=True)]
    in_scope = [c for c, g in zip(correct, gold, strict=True) if g != OOS]
    oos = [c for c, g in zip(correct, gold, strict=True) if g == OOS]
    unthresholded = [g == b for g, b in zip(gold, best, strict=True) if g != OOS]
    metrics: dict[str, float] = {
        "accuracy": round(sum(correct) / len(correct), 4) if correct else 0.0,
        "in_scope_accuracy": round(sum(in_scope) / len(in_scope), 4) if in_scope else 0.0,
        "top1_in_scope_accuracy": (
            round(sum(unthresholded) / len(unthresholded), 4) if unthresholded else 0.0
        ),
        "macro_f1": round(_macro_f1(gold, predicted), 4),
        "pass_rate": round(sum(correct) / len(correct), 4) if correct else 0.0,
        "threshold": round(threshold, 4),
        "train_seconds": round(train_seconds, 2),
    }
    if oos:
        metrics["oos_recall"] = round(sum(oos) / len(oos), 4)
    thresholds = sorted({*CURVE, *np.round(np.linspace(0.9, 0.99, 10), 3).tolist(), threshold})
    curve = oos_curve(gold, best, [float(c) for c in confidence], thresholds)

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
        config={
            "shots": shots,
            "train_rows": len(rows),
            "unknown_intents": unknown,
            "keep_in_scope": keep_in_scope,
            "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
            "training": {k: getattr(training, k) for k in training.__dataclass_fields__},
        },
        oos_curve=curve,
    )
