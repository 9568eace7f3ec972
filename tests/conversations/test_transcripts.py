"""Whole conversations as TestChat transcripts, and concurrent bookings through arespond."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import pytest

from cxbot.assistant import Assistant
from cxbot.testing import FixedClock, TestChat


def test_booking_with_a_correction(bot: Assistant) -> None:
    chat = TestChat(bot, customer_id="C-1002")
    chat.say("I'd like to book an appointment about savings").expect(
        route="flow", intent="book_appointment", slots={"topic": "savings"}
    )
    chat.say("Riverside please").expect(slots={"branch": "Riverside"})
    chat.say("next Tuesday at 2pm").expect(contains=["Shall I book it?", "14:00"])
    chat.say("actually make it 3pm").expect(slots={"time": "15:00"}, contains=["15:00"])
    chat.say("yes").expect(events=["flow_completed"], contains=["booked", "15:00"])


def test_digression_is_answered_and_the_flow_resumes(bot: Assistant) -> None:
    chat = TestChat(bot, customer_id="C-1002")
    chat.say("Book a mortgage appointment at Old Town").expect(slots={"branch": "Old Town"})
    chat.say("How long does an international transfer take?").expect(
        route="flow", contains=["To carry on where we were"], slots={"topic": "mortgage"}
    )
    assert chat.reply.citations, "the digression was not answered from the knowledge base"
    chat.say("Friday at 11am").expect(contains=["Shall I book it?"])


def test_cancel_mid_flow_and_invalid_date_reasked(bot: Assistant) -> None:
    chat = TestChat(bot, customer_id="C-1003")
    chat.say("Book a business appointment at Market Square").expect(route="flow")
    chat.say("Saturday").expect(events=["slot_rejected"], contains=["weekday"])
    chat.say("never mind").expect(events=["flow_cancelled"])
    assert bot.state(chat.conversation_id).flow is None


def test_slot_taken_offers_alternatives(bot: Assistant) -> None:
    ask = "Book a mortgage appointment at Harbour Street next Tuesday at 10am"
    TestChat(bot, customer_id="C-1001").say(ask).say("yes").expect(contains=["booked"])
    second = TestChat(bot, customer_id="C-1004")
    second.say(ask).say("yes").expect(contains=["already taken", "11:00"])
    second.say("11am then").say("yes").expect(events=["flow_completed"])


def test_restart_mid_flow_keeps_the_slots(make_bot: Callable[..., Assistant]) -> None:
    first = make_bot()
    chat = TestChat(first, customer_id="C-1002", conversation_id="restart")
    chat.say("Book a savings appointment at Riverside")
    first.close()
    again = TestChat(make_bot(), customer_id="C-1002", conversation_id="restart")
    again.say("next Tuesday at 10am").expect(
        slots={"branch": "Riverside", "topic": "savings", "date": "2026-12-01", "time": "10:00"}
    )


def test_expect_failure_says_expected_and_got(bot: Assistant) -> None:
    chat = TestChat(bot).say("How do I change my PIN?")
    with pytest.raises(AssertionError) as info:
        chat.expect(route="flow")
    assert "route: expected flow, got rag" in str(info.value)


def test_fifty_concurrent_bookings_of_one_slot_book_it_once(
    make_bot: Callable[..., Assistant], clock: FixedClock
) -> None:
    bot = make_bot()
    customers = [f"C-{1001 + n % 24}" for n in range(50)]
    ask = "Book a mortgage appointment at Harbour Street next Tuesday at 10am"

    async def run() -> list[str]:
        await asyncio.gather(
            *(bot.arespond(f"rush-{n}", ask, customer_id=c) for n, c in enumerate(customers))
        )
        replies = await asyncio.gather(
            *(bot.arespond(f"rush-{n}", "yes", customer_id=c) for n, c in enumerate(customers))
        )
        return [r.text for r in replies]

    texts = asyncio.run(run())
    assert sum("is booked for" in t for t in texts) == 1
    assert sum("already taken" in t for t in texts) == 49
    slot = datetime(2026, 12, 1, 10, 0)
    booked = [
        a for c in set(customers) for a in bot.deps.calendar.upcoming(c, clock()) if a.start == slot
    ]
    assert len(booked) == 1
