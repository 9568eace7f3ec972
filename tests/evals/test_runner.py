"""The eval runner on the real assistant: metrics, isolation, determinism, baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cxbot.assistant import Assistant
from cxbot.evals.report import compare, to_markdown
from cxbot.evals.runner import VOLATILE_FIELDS, EvalRunner
from cxbot.evals.suite import Suite, load_suite
from cxbot.rag.answer import passage_sentences
from cxbot.testing import StubLLMServer

SUITE = """
suite: mini
thresholds: {pass_rate: 0.5, route_accuracy: 0.9}
cases:
  - id: pin
    user: How do I change my PIN?
    expect: {route: rag, cites: [cards/change-your-pin.md]}
  - id: book-a
    customer_id: C-1002
    turns:
      - user: Book a savings appointment at Riverside next Tuesday at 10am
        expect: {route: flow, intent: book_appointment, slots: {branch: Riverside, time: "10:00"}}
      - user: yes
        expect: {events: [flow_completed], contains: [booked]}
  - id: book-b
    customer_id: C-1003
    turns:
      - user: Book a savings appointment at Riverside next Tuesday at 10am
      - user: yes
        expect: {contains: [booked]}
  - id: wrong
    user: hello
    expect: {route: rag, intent: greet}
"""


def suite(tmp_path: Path, text: str = SUITE) -> Suite:
    path = tmp_path / "mini.yaml"
    path.write_text(text)
    return load_suite(path)


def stable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in VOLATILE_FIELDS}


def test_metrics_thresholds_and_case_records(bot: Assistant, tmp_path: Path) -> None:
    report = EvalRunner(bot, workers=2).run([suite(tmp_path)])
    assert report["cases_total"] == 4 and report["cases_passed"] == 3
    cases = {c["id"]: c for c in report["cases"]}
    assert [c["id"] for c in report["cases"]] == ["pin", "book-a", "book-b", "wrong"]
    # each case has its own calendar: the same slot is booked in both
    assert cases["book-a"]["passed"] and cases["book-b"]["passed"]
    failed = [c for t in cases["wrong"]["turns"] for c in t["checks"] if not c["passed"]]
    assert [(c["evaluator"], c["expected"], c["got"]) for c in failed] == [("route", "rag", "flow")]
    metrics = report["metrics"]
    assert metrics["pass_rate"] == 0.75
    assert metrics["route_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["intent_accuracy"] == 1.0 and metrics["slot_accuracy"] == 1.0
    broken = [t for t in report["thresholds"] if not t["passed"]]
    assert [(t["metric"], t["min"]) for t in broken] == [("route_accuracy", 0.9)]
    assert report["passed"] is False
    assert report["intents"]["predictions"][0]["gold"] == "book_appointment"
    json.dumps(report)  # JSON-ready


def test_eval_leaves_the_projects_stores_alone(bot: Assistant, tmp_path: Path) -> None:
    EvalRunner(bot).run([suite(tmp_path)])
    assert bot.deps.calendar.upcoming("C-1002", bot.deps.clock()) == []
    assert bot.events("mini/book-a") == []


def test_a_crashing_case_is_recorded_not_raised(bot: Assistant, tmp_path: Path) -> None:
    text = "suite: s\ncases:\n  - id: ghost\n    customer_id: C-0000\n    user: hi\n"
    report = EvalRunner(bot).run([suite(tmp_path, text)])
    [case] = report["cases"]
    assert case["passed"] is False and case["error"].startswith("UnknownCustomer")


def test_same_inputs_same_report(bot: Assistant, tmp_path: Path) -> None:
    first = EvalRunner(bot, workers=2, seed=3).run([suite(tmp_path)])
    second = EvalRunner(bot, workers=1, seed=3).run([suite(tmp_path)])
    assert json.dumps(stable(first)) == json.dumps(stable(second))


def test_same_seed_and_stub_llm_give_identical_reports(make_bot: Any, tmp_path: Path) -> None:
    def responder(request: Any) -> str:
        # a reply its passage supports, so the grounding guardrail lets it through as it is
        lines = request.last_user.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("[1] ")) + 1
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        quote = passage_sentences("\n".join(lines[start:end]))[0]
        return f"Here is what the article says:\n{quote} [1]"

    with StubLLMServer(responder) as server:
        env = {
            "CXBOT_LLM__BASE_URL": server.base_url,
            "CXBOT_LLM__MODEL": "stub-model",
            "CXBOT_LLM__MAX_RETRIES": "0",
        }
        reports = [EvalRunner(make_bot(env=env), seed=7).run([suite(tmp_path)]) for _ in range(2)]
        assert server.requests, "the LLM path was not used"
    assert json.dumps(stable(reports[0])) == json.dumps(stable(reports[1]))
    pin = next(c for c in reports[0]["cases"] if c["id"] == "pin")
    assert pin["turns"][0]["reply"].startswith("Here is what the article says:")


def test_baseline_comparison_names_flips(bot: Assistant, tmp_path: Path) -> None:
    report = EvalRunner(bot).run([suite(tmp_path)])
    baseline = json.loads(json.dumps(report))
    baseline["cases"][3]["passed"] = True  # "wrong" passed before
    baseline["cases"][0]["passed"] = False  # "pin" failed before
    baseline["metrics"]["pass_rate"] = 0.5
    comparison = compare(report, baseline)
    assert comparison.regressions == ["mini/wrong"]
    assert comparison.fixes == ["mini/pin"]
    assert comparison.deltas["pass_rate"] == (0.5, 0.75)
    markdown = to_markdown(report, comparison)
    assert "`mini/wrong`" in markdown and "+25.0" in markdown
