"""The scripted demo conversation: each of its expectations holds on a fresh project."""

from __future__ import annotations

from pathlib import Path

from cxbot.assistant import Assistant
from cxbot.evals.runner import EvalRunner
from cxbot.evals.suite import load_suite


def test_demo_script_meets_every_expectation(project: Path, bot: Assistant) -> None:
    suite = load_suite(project / "evals/northwind/demo.yaml")
    report = EvalRunner(bot).run([suite])
    failed = [c for c in report["cases"] if not c["passed"]]
    assert failed == []
    routes = {t["route"] for c in report["cases"] for t in c["turns"]}
    assert routes == {"rag", "flow", "blocked", "handoff"}


def test_arespond_runs_turns_concurrently_without_crossing(bot: Assistant) -> None:
    import asyncio

    async def both() -> tuple[object, object]:
        return await asyncio.gather(
            bot.arespond("async-a", "How do I change my PIN?"),
            bot.arespond("async-b", "I want to talk to a human"),
        )

    first, second = asyncio.run(both())
    assert first.route == "rag" and second.route == "handoff"  # type: ignore[attr-defined]
    assert bot.state("async-a").handed_off is False
    assert bot.state("async-b").handed_off is True
