"""The scripted demo conversation: each of its expectations holds on a fresh project."""

from __future__ import annotations

from pathlib import Path

from cxbot.assistant import Assistant
from cxbot.evals.script import check, load_script


def test_demo_script_meets_every_expectation(project: Path, bot: Assistant) -> None:
    script = load_script(project / "evals/northwind/demo.yaml")
    routes = set()
    for convo in script.conversations:
        for turn in convo.turns:
            reply = bot.respond(convo.id, turn.user, customer_id=convo.customer_id)
            assert check(turn.expect, reply) == [], (convo.id, turn.user, reply.text)
            routes.add(reply.route)
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
