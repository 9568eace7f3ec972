"""Step-up verification: account answers wait for a verified customer; failed checks lock
and hand over; a verification expires."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import (
    ConversationContinued,
    HandoffRequested,
    UserUttered,
    VerificationFailed,
    VerificationLocked,
    VerificationRequested,
    VerificationSucceeded,
)
from cxbot.identity import WITHHELD
from cxbot.testing import FixedClock
from cxbot.types import Reply

BALANCE = "How much money do I have in my accounts?"
# C-1001 in knowledge/northwind/customers.json
DOB, POSTCODE = "3 January 1959", "KB1 4QR"
ACCOUNT_VALUES = ("8423.17", "9958", "48250", "-214380.55", "frozen")


def _claim(bot: Assistant, conversation: str, text: str, customer: str = "C-1001") -> Reply:
    return bot.respond(conversation, text, customer_id=customer, authenticated=False)


def _no_account_data(text: str) -> None:
    assert not any(value in text for value in ACCOUNT_VALUES), text


def test_an_unverified_balance_question_gets_the_verification_questions(bot: Assistant) -> None:
    reply = bot.respond("v1", BALANCE, customer_id="C-1001", authenticated=False)
    assert reply.route == "flow"
    assert "date of birth" in reply.text
    _no_account_data(reply.text)
    assert not reply.citations
    assert VerificationRequested("C-1001", "date_of_birth", True, BALANCE) in reply.events

    reply = _claim(bot, "v1", f"It's {DOB}")
    assert "postcode" in reply.text
    _no_account_data(reply.text)
    assert VerificationRequested("C-1001", "postcode", True) in reply.events

    reply = _claim(bot, "v1", POSTCODE.lower().replace(" ", ""))
    assert reply.text.startswith("Thank you, that's you verified.")
    assert "8423.17" in reply.text  # the question asked before verification is answered now
    assert any(c.source == "profile: accounts" for c in reply.citations)
    assert any(isinstance(e, VerificationSucceeded) for e in reply.events)

    # answers are never recorded, only a placeholder
    said = [e.text for e in bot.events("v1") if isinstance(e, UserUttered)]
    assert said == [BALANCE, WITHHELD, WITHHELD]
    assert "1959" not in str(bot.state("v1")) and "KB1" not in str(bot.state("v1"))
    assert bot.deps.turn_log is not None  # nor in the turn log (`cxbot insights`)
    logged = [t.record for t in bot.deps.turn_log.turns() if t.conversation_id == "v1"]
    assert [r.text for r in logged if r is not None] == [BALANCE, WITHHELD, WITHHELD]


def test_card_status_and_own_bookings_wait_for_verification(bot: Assistant) -> None:
    card = _claim(bot, "v2", "Is my debit card frozen at the moment?")
    assert "date of birth" in card.text and card.route == "flow"
    _no_account_data(card.text)
    bookings = _claim(bot, "v3", "I need to cancel my appointment")
    assert "date of birth" in bookings.text
    assert bot.state("v3").flow is None  # no task for the customer's bookings yet


def test_public_questions_are_answered_without_verification(bot: Assistant) -> None:
    reply = _claim(bot, "v4", "How do I dispute a card payment?")
    assert reply.route == "rag" and reply.citations
    assert all(not c.source.startswith("profile:") for c in reply.citations)
    assert not any(isinstance(e, VerificationRequested) for e in reply.events)


def test_an_authenticated_customer_is_answered_at_once(bot: Assistant) -> None:
    reply = bot.respond("v5", BALANCE, customer_id="C-1001", authenticated=True)
    assert "8423.17" in reply.text
    assert not any(isinstance(e, VerificationRequested) for e in reply.events)
    default = bot.respond("v6", BALANCE, customer_id="C-1001")  # identity.trust_customer_id
    assert "8423.17" in default.text


def test_three_failed_attempts_lock_verification_and_hand_over(bot: Assistant) -> None:
    _claim(bot, "v7", BALANCE)
    for attempt in (1, 2, 3):
        reply = _claim(bot, "v7", "14/02/1980")
        assert "postcode" in reply.text  # the wrong answer is not named
        reply = _claim(bot, "v7", "KB1 4QR")
        failed = [e for e in reply.events if isinstance(e, VerificationFailed)]
        assert failed == [VerificationFailed("C-1001", attempt)]
        _no_account_data(reply.text)
    assert reply.route == "handoff"
    assert reply.handoff is not None and reply.handoff.reason == "verification_failed"
    assert reply.handoff.customer is not None
    assert reply.handoff.customer.facts == {}  # nothing from the unverified profile
    assert "identity" in reply.handoff.suggested_next_step
    assert any(isinstance(e, VerificationLocked) for e in reply.events)
    assert any(isinstance(e, HandoffRequested) for e in reply.events)
    assert bot.state("v7").handed_off

    # another conversation of the same customer is locked out too, and handed over
    again = _claim(bot, "v8", "What is my card status?")
    assert again.route == "handoff" and again.handoff is not None
    assert again.handoff.reason == "verification_failed"
    assert not any(isinstance(e, VerificationRequested) for e in again.events)
    _no_account_data(again.text)


def test_a_message_without_an_answer_is_asked_again_not_counted(bot: Assistant) -> None:
    _claim(bot, "v9", BALANCE)
    reply = _claim(bot, "v9", "why do you need that?")
    assert reply.text.startswith("Sorry, I didn't catch that.") and "date of birth" in reply.text
    assert not any(isinstance(e, VerificationFailed) for e in reply.events)
    assert bot.state("v9").verification is not None


def test_asking_for_a_person_during_verification_hands_over(bot: Assistant) -> None:
    _claim(bot, "v10", BALANCE)
    reply = _claim(bot, "v10", "I want to talk to a real person")
    assert reply.route == "handoff" and reply.handoff is not None
    assert reply.handoff.reason == "customer_request"


def test_verification_expires(make_bot: Callable[..., Assistant], clock: FixedClock) -> None:
    bot = make_bot(env={"CXBOT_IDENTITY__VERIFICATION_TTL_S": "600"})
    _claim(bot, "v11", BALANCE)
    _claim(bot, "v11", DOB)
    assert "8423.17" in _claim(bot, "v11", POSTCODE).text
    clock.advance(minutes=9)
    assert "8423.17" in bot.respond("v11", BALANCE, customer_id="C-1001", authenticated=False).text
    clock.advance(minutes=2)
    expired = bot.respond("v11", BALANCE, customer_id="C-1001", authenticated=False)
    assert "date of birth" in expired.text
    _no_account_data(expired.text)


def test_an_unverified_claim_on_another_channel_continues_nothing(bot: Assistant) -> None:
    _claim(bot, "web-1", "I'd like to book a savings appointment at Riverside")
    # verified on the web: the booking is the customer's
    bot.respond("web-1", "next Monday", customer_id="C-1001", authenticated=True)
    # an unverified claim on another channel sees none of it
    sms = bot.respond("sms-1", "10am", customer_id="C-1001", authenticated=False, channel="sms")
    assert bot.state("sms-1").flow is None
    assert not any(isinstance(e, ConversationContinued) for e in bot.events("sms-1"))
    assert "Riverside" not in sms.text


@pytest.mark.parametrize(
    ("answer", "field", "ok"),
    [
        ("03/01/1959", "date_of_birth", True),
        ("1959-01-03", "date_of_birth", True),
        ("3rd of Jan 1959", "date_of_birth", True),
        ("January 3, 1959", "date_of_birth", True),
        ("01/03/1959", "date_of_birth", False),  # day first, as written in the UK
        ("it is kb14qr", "postcode", True),
        ("KB1 4QS", "postcode", False),
    ],
)
def test_answers_are_read_in_common_forms(
    bot: Assistant, answer: str, field: str, ok: bool
) -> None:
    from cxbot.identity import answer_value, matches

    profile = bot.deps.profiles.get("C-1001")
    assert profile is not None
    value = answer_value(field, answer)
    assert value is not None
    assert matches(field, value, profile) is ok
