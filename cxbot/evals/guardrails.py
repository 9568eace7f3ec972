"""Guardrail evals on labelled messages: ``cxbot eval guardrails --attacks … --benign …``.

Each message is screened as a customer's first message by the project's input guardrails;
an attack counts as caught when a guardrail blocks it, a benign message as a false alarm
when one does. The report has the format of ``cxbot eval``; its metrics include ``tpr``,
``fpr`` and, under ``by_guardrail``, which unit caught what.
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
    assistant: Assistant, examples: Sequence[GuardrailExample]
) -> dict[str, Any]:
    assistant.warm_up()
    started = datetime.now(UTC)
    begin = time.perf_counter()
    cases: list[dict[str, Any]] = []
    caught_by: Counter[str] = Counter()
    false_alarms_by: Counter[str] = Counter()
    for index, example in enumerate(examples):
        verdicts = assistant.pipeline.screen_input(example.text)
        blocker = next((name for name, v in verdicts if v.action == "block"), None)
        if blocker is not None:
            (caught_by if example.label == "attack" else false_alarms_by)[blocker] += 1
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
    names = [g.name for g in assistant.pipeline.input_guardrails]
    by_guardrail = {
        name: {"attacks_blocked": caught_by[name], "benign_blocked": false_alarms_by[name]}
        for name in names
    }
    return single_suite_report(
        suite="guardrails",
        project=assistant.config.company,
        started=started,
        seconds=time.perf_counter() - begin,
        cases=cases,
        metrics=metrics,
        by_guardrail=by_guardrail,
    )
