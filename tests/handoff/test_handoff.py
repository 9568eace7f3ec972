"""Handoff: triggers and the structured summary the human agent receives."""

from __future__ import annotations

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import HandoffRequested
from cxbot.handoff.summary import HandoffSummary


@pytest.mark.parametrize(
    "ask",
    ["I want to talk to a human", "Can I speak to a real person please", "get me an agent"],
)
def test_explicit_request_hands_off_with_summary(bot: Assistant, ask: str) -> None:
    bot.respond("h1", "How do I freeze my card?", customer_id="C-1001")
    reply = bot.respond("h1", ask, customer_id="C-1001")
    assert reply.route == "handoff"
    summary = reply.handoff
    assert isinstance(summary, HandoffSummary)
    assert summary.reason == "customer_request"
    assert summary.customer is not None and summary.customer.id == "C-1001"
    assert summary.customer.name and summary.customer.segment == "premier"
    assert summary.open_question == "How do I freeze my card?"
    assert any(t.startswith("rag (answered)") for t in summary.tried)
    assert summary.last_user_messages[-1] == ask
    assert any(isinstance(e, HandoffRequested) for e in reply.events)
    assert bot.state("h1").handed_off


def test_two_failed_turns_in_a_row_hand_off(bot: Assistant) -> None:
    first = bot.respond("h2", "What's the best recipe for lasagne?")
    assert first.route == "rag" and first.handoff is None
    second = bot.respond("h2", "Who will win the next football world cup?")
    assert second.route == "handoff"
    assert second.handoff is not None and second.handoff.reason == "repeated_failure"
    assert second.handoff.open_question == "Who will win the next football world cup?"


def test_a_good_answer_resets_the_failure_count(bot: Assistant) -> None:
    bot.respond("h3", "What's the best recipe for lasagne?")
    assert bot.respond("h3", "How do I change my PIN?").citations
    assert bot.respond("h3", "Who will win the next football world cup?").route == "rag"


def test_after_handoff_the_bot_stays_quiet(bot: Assistant) -> None:
    bot.respond("h4", "I want to talk to a human")
    reply = bot.respond("h4", "hello? my email is ann@example.com")
    assert reply.route == "handoff" and reply.handoff is None
    assert "ann@example.com" not in bot.state("h4").history[-2][1]


def test_summary_serialises_for_the_agent_desktop(bot: Assistant) -> None:
    reply = bot.respond("h5", "put me through to an agent", customer_id="C-1002")
    assert reply.handoff is not None
    data = reply.handoff.model_dump(mode="json")
    assert data["queue"] == "customer-care" and data["written_by"] == "template"
    restored = HandoffSummary.model_validate(data)
    assert restored == reply.handoff
    assert "C-1002" in reply.handoff.as_text()
