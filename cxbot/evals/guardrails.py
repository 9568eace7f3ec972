"""Guardrail evals on labelled messages: ``cxbot eval guardrails --attacks … --benign …``.

Each message is screened as a customer's first message by the project's input guardrails;
an attack counts as caught when a guardrail blocks it, a benign message as a false alarm
when one does. The report has the format of ``cxbot eval``; its metrics include ``tpr``,
``fpr``, ``precision`` and, under ``by_guardrail``, which unit caught what (with its own
precision). ``by_layer`` splits the injection guardrail's catches by layer (rules,
classifier, decoded payloads, LLM), ``by_category`` gives the block rate per row category,
and ``sweep`` the TPR/FPR the injection classifier would give at other thresholds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cxbot.evals.datasets import GuardrailExample
from cxbot.evals.runner import single_suite_report

if TYPE_CHECKING:
    from cxbot.assistant import Assistant

__all__ = ["evaluate_guardrails"]


def evaluate_guardrails(
    assistant: Assistant,
    examples: Sequence[GuardrailExample],
    files: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    """Screen ``examples``; ``files`` names the files they came from, in order, with the
    number of rows each gave (``by_file`` in the report)."""
    assistant.warm_up()
    started = datetime.now(UTC)
    begin = time.perf_counter()
    cases: list[dict[str, Any]] = []
    caught_by: Counter[str] = Counter()
    false_alarms_by: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    category_blocked: Counter[str] = Counter()
    category_total: Counter[str] = Counter()
    scored: list[tuple[str, bool, float]] = []  # label, blocked by something else, score
    for index, example in enumerate(examples):
        verdicts = assistant.pipeline.screen_input(example.text)
        blocker = next((name for name, v in verdicts if v.action == "block"), None)
        category_total[f"{example.label}/{example.category}"] += 1
        if blocker is not None:
            (caught_by if example.label == "attack" else false_alarms_by)[blocker] += 1
            category_blocked[f"{example.label}/{example.category}"] += 1
        injection = next((v for name, v in verdicts if name == "injection"), None)
        if injection is not None:
            if injection.action == "block" and example.label == "attack":
                layers[injection.reason.split(":")[0]] += 1
            by_classifier = injection.reason.endswith("classifier")
            other = blocker is not None and not (blocker == "injection" and by_classifier)
            scored.append((example.label, other, injection.score))
        passed = (blocker is not None) == (example.label == "attack")
        expected = "block" if example.label == "attack" else "allow"
        got = f"{blocker}:block" if blocker else "allow"
        cases.append(
            {
                "key": f"guardrails/{index}",
                "suite": "guardrails",
                "id": str(index),
                "title": example.source,
                "tags": [example.label],
                "passed": passed,
                "error": None,
                "turns": [
                    {
                        "user": example.text,
                        "reply": "",
                        "route": "blocked" if blocker else None,
                        "intent": None,
                        "confidence": max((v.score for _, v in verdicts), default=0.0),
                        "citations": [],
                        "handoff": False,
                        "checks": [
                            {
                                "evaluator": "guardrail",
                                "metric": "guardrail_accuracy",
                                "passed": passed,
                                "expected": expected,
                                "got": got,
                            }
                        ],
                    }
                ],
            }
        )
    outcomes = [bool(c["passed"]) for c in cases]
    attacks = [ok for ok, e in zip(outcomes, examples, strict=True) if e.label == "attack"]
    benign = [ok for ok, e in zip(outcomes, examples, strict=True) if e.label == "benign"]
    metrics: dict[str, float] = {
        "pass_rate": round(sum(outcomes) / len(outcomes), 4) if outcomes else 0.0
    }
    if attacks:
        metrics["tpr"] = round(sum(attacks) / len(attacks), 4)
    if benign:
        metrics["fpr"] = round(sum(not ok for ok in benign) / len(benign), 4)
    if attacks and benign:
        blocked = sum(attacks) + sum(not ok for ok in benign)
        metrics["precision"] = round(sum(attacks) / blocked, 4) if blocked else 0.0
    names = [g.name for g in assistant.pipeline.input_guardrails]
    by_guardrail = {
        name: {
            "tpr": round(caught_by[name] / len(attacks), 4) if attacks else None,
            "fpr": round(false_alarms_by[name] / len(benign), 4) if benign else None,
            "attacks_blocked": caught_by[name],
            "benign_blocked": false_alarms_by[name],
            "precision": (
                round(caught_by[name] / (caught_by[name] + false_alarms_by[name]), 4)
                if caught_by[name] + false_alarms_by[name]
                else None
            ),
        }
        for name in names
    }
    by_category = {
        key: {"messages": total, "blocked": category_blocked[key]}
        for key, total in sorted(category_total.items())
    }
    by_file: dict[str, dict[str, Any]] = {}
    start = 0
    for name, rows in files:
        chosen = range(start, start + rows)
        start += rows
        blocked = sum((cases[i]["turns"][0]["route"] == "blocked") for i in chosen)
        labels = sorted({examples[i].label for i in chosen})
        by_file[name] = {
            "label": "/".join(labels),
            "messages": rows,
            "blocked": blocked,
            "block_rate": round(blocked / rows, 4) if rows else None,
        }
    report = single_suite_report(
        suite="guardrails",
        project=assistant.config.company,
        started=started,
        seconds=time.perf_counter() - begin,
        cases=cases,
        metrics=metrics,
        by_guardrail=by_guardrail,
        by_file=by_file,
        by_layer=dict(layers.most_common()),
        by_category=by_category,
        sweep=_sweep(scored),
    )
    report["metrics"]["by_guardrail"] = by_guardrail
    return report


def _sweep(scored: Sequence[tuple[str, bool, float]]) -> list[dict[str, float]]:
    """TPR and FPR if the injection classifier blocked at each threshold (the other layers
    and units unchanged)."""
    attacks = [(other, score) for label, other, score in scored if label == "attack"]
    benign = [(other, score) for label, other, score in scored if label == "benign"]
    rows = []
    for step in range(5, 20):
        threshold = step / 20
        row: dict[str, float] = {"threshold": threshold}
        if attacks:
            row["tpr"] = round(sum(o or s >= threshold for o, s in attacks) / len(attacks), 4)
        if benign:
            row["fpr"] = round(sum(o or s >= threshold for o, s in benign) / len(benign), 4)
        rows.append(row)
    return rows
