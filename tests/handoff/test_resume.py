"""Hand back: the human agent returns the conversation and the booking carries on."""

from __future__ import annotations

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import BotUttered, HandedBack, SlotSet
from cxbot.errors import InvalidSlot, TurnError, UnknownConversation


def _failed_booking(bot: Assistant, cid: str) -> None:
    bot.respond(cid, "Book a mortgage appointment at Old Town", customer_id="C-1015")
    bot.respond(cid, "Saturday")
    reply = bot.respond(cid, "Sunday")
    assert reply.handoff is not None and reply.handoff.trigger == "flow_retries"
    assert reply.handoff.slots == {"branch": "Old Town", "topic": "mortgage"}


def test_the_bot_is_silent_while_handed_off(bot: Assistant) -> None:
    _failed_booking(bot, "r1")
    for text in ("hello?", "How do I change my PIN?", "Friday at 10am"):
        reply = bot.respond("r1", text)
        assert reply.route == "handoff" and reply.handoff is None
        assert reply.text.startswith("A colleague has your conversation")
    assert bot.state("r1").flow is not None
    assert "date" not in bot.state("r1").flow.slots  # type: ignore[union-attr]


def test_resume_with_a_corrected_slot_continues_the_booking(bot: Assistant) -> None:
    _failed_booking(bot, "r2")
    bot.resume("r2", note="Customer can do Friday", slots={"date": "Friday"}, agent_id="A-7")
    state = bot.state("r2")
    assert not state.handed_off and state.flow is not None
    assert state.flow.slots["date"] == "2026-11-27"
    assert state.flow.requested == "time"
    events = bot.events("r2")
    assert HandedBack("Customer can do Friday", {"date": "Friday"}, "A-7") in events
    assert SlotSet("date", "2026-11-27") in events
    asked = events[-1]
    assert isinstance(asked, BotUttered) and "What time" in asked.text
    reply = bot.respond("r2", "10am please")
    assert reply.route == "flow" and reply.handoff is None
    assert "Shall I book it?" in reply.text and "10:00" in reply.text
    done = bot.respond("r2", "yes")
    assert "is booked for" in done.text


def test_resume_without_slots_asks_again_for_what_is_missing(bot: Assistant) -> None:
    _failed_booking(bot, "r3")
    bot.resume("r3")
    assert bot.state("r3").flow.requested == "date"  # type: ignore[union-attr]
    reply = bot.respond("r3", "Thursday at 2pm")
    assert reply.route == "flow" and "Shall I book it?" in reply.text


def test_resume_rejects_unknown_slots_and_invalid_values(bot: Assistant) -> None:
    _failed_booking(bot, "r4")
    before = bot.events("r4")
    with pytest.raises(InvalidSlot, match="no slot 'colour'"):
        bot.resume("r4", slots={"colour": "blue"})
    with pytest.raises(InvalidSlot, match="not available"):
        bot.resume("r4", slots={"date": "Saturday"})
    with pytest.raises(InvalidSlot, match="not a value"):
        bot.resume("r4", slots={"branch": "Atlantis"})
    assert bot.events("r4") == before and bot.state("r4").handed_off


def test_resume_an_unknown_conversation_is_a_turn_error(bot: Assistant) -> None:
    with pytest.raises(UnknownConversation) as caught:
        bot.resume("never-started")
    assert isinstance(caught.value, TurnError)


def test_resume_without_a_task_answers_again(bot: Assistant) -> None:
    bot.respond("r5", "I want to talk to a human")
    with pytest.raises(InvalidSlot, match="no task in progress"):
        bot.resume("r5", slots={"date": "Friday"})
    bot.resume("r5", note="answered on the phone")
    reply = bot.respond("r5", "How do I change my PIN?")
    assert reply.route == "rag" and reply.citations
