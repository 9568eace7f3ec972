"""The Northwind eval suites gate CI: every threshold holds, offline, in minutes."""

from __future__ import annotations

import time
from pathlib import Path

from cxbot.assistant import Assistant
from cxbot.evals.runner import EvalRunner
from cxbot.evals.suite import load_suites

MIN_CASES = 150
KINDS = {"intents", "flows", "rag", "guardrails", "handoff"}


def test_northwind_suites_meet_their_thresholds(project: Path, bot: Assistant) -> None:
    suites = load_suites(project / "evals")
    assert {s.suite for s in suites} >= KINDS
    start = time.perf_counter()
    report = EvalRunner(bot, workers=2).run(suites)
    seconds = time.perf_counter() - start
    assert report["cases_total"] >= MIN_CASES
    broken = [t for t in report["thresholds"] if not t["passed"]]
    assert broken == [], broken
    assert report["passed"]
    assert seconds < 120
