"""A session with no customer id (an anonymous web chat): an account question or a task for
a customer asks for the customer number, then the usual checks; an unknown number is never
revealed; failures lock and hand over; ``identity.ask_customer_id: false`` keeps the old
behaviour."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import (
    CustomerIdentified,
    HandoffRequested,
    UserUttered,
    VerificationFailed,
    VerificationLocked,
    VerificationRequested,
    VerificationSucceeded,
)
from cxbot.identity import CUSTOMER_NUMBER, WITHHELD, customer_numbers
from cxbot.prompts import ReplyKey
from cxbot.types import Reply

BALANCE = "How much money do I have in my accounts?"
# C-1001 in knowledge/northwind/customers.json
NUMBER, DOB, POSTCODE = "my customer number is c 1001", "3 January 1959", "KB1 4QR"
ACCOUNT_VALUES = ("8423.17", "9958", "48250", "-214380.55", "frozen")


def _anon(bot: Assistant, conversation: str, text: str) -> Reply:
    return bot.respond(conversation, text)


def _no_account_data(text: str) -> None:
    assert not any(value in text for value in ACCOUNT_VALUES), text


def test_an_anonymous_balance_question_asks_for_the_customer_number_first(
    bot: Assistant,
) -> None:
    reply = _anon(bot, "a1", BALANCE)
    assert reply.route == "flow"
    assert "customer number" in reply.text
    _no_account_data(reply.text)
    assert not reply.citations
    assert VerificationRequested(None, CUSTOMER_NUMBER, True, BALANCE) in reply.events

    reply = _anon(bot, "a1", NUMBER)
    assert "date of birth" in reply.text
    assert VerificationRequested("C-1001", "date_of_birth", True) in reply.events
    _no_account_data(reply.text)

    reply = _anon(bot, "a1", f"It's {DOB}")
    assert "postcode" in reply.text
    _no_account_data(reply.text)

    reply = _anon(bot, "a1", POSTCODE.lower())
    assert reply.text.startswith("Thank you, that's you verified.")
    assert "8423.17" in reply.text  # the question asked before verification is answered now
    assert any(c.source == "profile: accounts" for c in reply.citations)
    identified = [e for e in reply.events if isinstance(e, CustomerIdentified)]
    assert identified == [CustomerIdentified("C-1001")]
    assert any(isinstance(e, VerificationSucceeded) for e in reply.events)
    state = bot.state("a1")
    assert state.customer_id == "C-1001" and state.verified_until is not None

    # the conversation is now the verified customer's: the next question is answered
    again = _anon(bot, "a1", "Is my debit card frozen at the moment?")
    assert not any(isinstance(e, VerificationRequested) for e in again.events)
    assert "frozen" in again.text

    # answers are never recorded, only a placeholder
    said = [e.text for e in bot.events("a1") if isinstance(e, UserUttered)]
    assert said[:4] == [BALANCE, WITHHELD, WITHHELD, WITHHELD]
    stored = str(bot.events("a1")) + str(bot.state("a1"))
    assert "1959" not in stored and "KB1" not in stored and "c 1001" not in stored
    # nor in the turn log beside the events (`cxbot insights`)
    assert bot.deps.turn_log is not None
    logged = [t.record for t in bot.deps.turn_log.turns() if t.conversation_id == "a1"]
    texts = [r.text for r in logged if r is not None]
    assert texts[:4] == [BALANCE, WITHHELD, WITHHELD, WITHHELD]
    assert all(r.vector is None for r in logged[1:4] if r is not None)


def test_an_unknown_customer_number_is_asked_on_and_fails_without_a_hint(
    bot: Assistant,
) -> None:
    # an unknown number, and a known number with a wrong date of birth: the same replies
    unknown = [_anon(bot, "a2", text) for text in (BALANCE, "C-9999", DOB, POSTCODE)]
    known = [_anon(bot, "a3", text) for text in (BALANCE, "C-1001", "14/02/1980", POSTCODE)]
    assert [r.text for r in unknown] == [r.text for r in known]
    assert "date of birth" in unknown[1].text and "postcode" in unknown[2].text
    failed = unknown[3]
    assert failed.text.startswith("Sorry, those details don't match our records")
    assert "customer number" in failed.text  # asked again from the first question
    assert "9999" not in failed.text
    assert VerificationFailed(None, 1) in failed.events
    assert not any(isinstance(e, VerificationSucceeded) for e in failed.events)
    assert VerificationFailed("C-1001", 1) in known[3].events
    state = bot.state("a2")
    assert state.customer_id is None and state.verified_until is None
    assert state.verification is not None and state.verification.step == CUSTOMER_NUMBER
    # neither the unknown number nor an answer is kept
    assert "9999" not in str(bot.events("a2")) + str(state)


def test_three_failed_sets_lock_and_hand_over(bot: Assistant) -> None:
    _anon(bot, "a4", BALANCE)
    sets = (("C-1001", "14/02/1980"), ("C-4242", DOB), ("c1001", "14/02/1980"))
    for attempt, (number, dob) in enumerate(sets, 1):
        assert "date of birth" in _anon(bot, "a4", number).text
        reply = _anon(bot, "a4", dob)
        assert "postcode" in reply.text
        reply = _anon(bot, "a4", POSTCODE)
        failed = [e for e in reply.events if isinstance(e, VerificationFailed)]
        assert [f.attempt for f in failed] == [attempt]  # counted per conversation
        _no_account_data(reply.text)
    assert reply.route == "handoff"
    assert reply.handoff is not None and reply.handoff.reason == "verification_failed"
    assert reply.handoff.customer is None  # nobody identified, nothing from a profile
    assert any(isinstance(e, VerificationLocked) for e in reply.events)
    assert any(isinstance(e, HandoffRequested) for e in reply.events)
    assert bot.state("a4").handed_off and bot.state("a4").customer_id is None


def test_a_customer_locked_elsewhere_is_not_verified_with_the_right_answers(
    bot: Assistant,
) -> None:
    # C-1001 fails three sets in a claimed session: locked for the customer
    claim = {"customer_id": "C-1001", "authenticated": False}
    bot.respond("a5", BALANCE, **claim)  # type: ignore[arg-type]
    for _ in range(3):
        bot.respond("a5", "14/02/1980", **claim)  # type: ignore[arg-type]
        bot.respond("a5", POSTCODE, **claim)  # type: ignore[arg-type]
    assert bot.state("a5").handed_off

    # an anonymous session giving that number is asked on (the lock is not named before
    # the set ends), then locked and handed over, even with the right answers
    _anon(bot, "a6", BALANCE)
    assert "date of birth" in _anon(bot, "a6", "C-1001").text
    _anon(bot, "a6", DOB)
    reply = _anon(bot, "a6", POSTCODE)
    assert reply.route == "handoff" and reply.handoff is not None
    assert reply.handoff.reason == "verification_failed"
    assert not any(isinstance(e, VerificationSucceeded) for e in reply.events)
    _no_account_data(reply.text)


def test_a_task_for_a_customer_asks_for_the_customer_number(bot: Assistant) -> None:
    reply = _anon(bot, "a7", "I need to cancel my appointment")
    assert "customer number" in reply.text and reply.route == "flow"
    assert bot.state("a7").flow is None  # no task for anyone's bookings yet
    _anon(bot, "a7", "C-1001")
    _anon(bot, "a7", DOB)
    reply = _anon(bot, "a7", POSTCODE)
    assert reply.text.startswith("Thank you, that's you verified.")
    assert "sign in" not in reply.text
    assert any(isinstance(e, CustomerIdentified) for e in reply.events)
    assert bot.state("a7").customer_id == "C-1001"


def test_a_message_without_a_number_is_asked_again_not_counted(bot: Assistant) -> None:
    _anon(bot, "a8", BALANCE)
    reply = _anon(bot, "a8", "why do you need that?")
    assert reply.text.startswith("Sorry, I didn't catch that.")
    assert "customer number" in reply.text
    assert not any(isinstance(e, VerificationFailed) for e in reply.events)
    assert [e.text for e in bot.events("a8") if isinstance(e, UserUttered)] == [
        BALANCE,
        WITHHELD,
    ]


def test_asking_for_a_person_during_verification_hands_over(bot: Assistant) -> None:
    _anon(bot, "a9", BALANCE)
    _anon(bot, "a9", "C-1001")
    reply = _anon(bot, "a9", "I want to talk to a real person")
    assert reply.route == "handoff" and reply.handoff is not None
    assert reply.handoff.reason == "customer_request"


def test_public_questions_are_answered_without_verification(bot: Assistant) -> None:
    reply = _anon(bot, "a10", "How do I dispute a card payment?")
    assert reply.route == "rag" and reply.citations
    assert not any(isinstance(e, VerificationRequested) for e in reply.events)


def test_asking_for_the_customer_number_can_be_turned_off(
    make_bot: Callable[..., Assistant],
) -> None:
    bot = make_bot(env={"CXBOT_IDENTITY__ASK_CUSTOMER_ID": "false"})
    reply = _anon(bot, "a11", BALANCE)
    assert not any(isinstance(e, VerificationRequested) for e in reply.events)
    assert "customer number" not in reply.text and reply.route == "rag"
    _no_account_data(reply.text)
    task = _anon(bot, "a12", "I need to cancel my appointment")
    assert task.text == bot.deps.prompts.reply(ReplyKey.NEED_CUSTOMER)
    assert bot.state("a12").verification is None


@pytest.mark.parametrize(
    "text",
    ["C-1001", "c1001", "c 1001", "It's C - 1001.", "my number is c-1001 thanks", "C 10 01"],
)
def test_customer_numbers_are_read_leniently(text: str) -> None:
    assert customer_numbers(text)[0] == "C-1001"


def test_a_message_without_digits_gives_no_customer_number() -> None:
    assert customer_numbers("I don't know it") == ()


def test_a_fraud_report_during_verification_is_handled_not_asked_again(bot: Assistant) -> None:
    asked = _anon(bot, "a13", "Is my card blocked?")
    assert "customer number" in asked.text
    reply = _anon(
        bot, "a13", "I didn't make these payments, there are three of them from last night"
    )
    assert reply.route == "handoff" and reply.handoff is not None
    assert reply.handoff.reason == "policy_topic"
    # the report is the customer's message, not a withheld answer
    said = [e.text for e in bot.events("a13") if isinstance(e, UserUttered)]
    assert said[-1].startswith("I didn't make these payments") and WITHHELD not in said


@pytest.mark.parametrize(
    ("text", "how_to"),
    [
        ("How do I freeze my debit card?", True),
        ("I lost my card, what should I do?", True),
        ("hi, how can I order a new card", True),
        ("Is my card frozen?", False),
        ("How much money do I have?", False),
        ("What is my balance?", False),
    ],
)
def test_how_to_questions_are_told_from_account_questions(text: str, how_to: bool) -> None:
    from cxbot.identity import asks_how_to

    assert asks_how_to(text) is how_to


def test_answers_have_digits_or_are_short() -> None:
    from cxbot.identity import could_be_answer

    assert could_be_answer("why do you need that?")
    assert could_be_answer("my customer number is C-1001 and my postcode is KB1 4QR ok")
    assert not could_be_answer(
        "I didn't make these payments, there are three of them from last night"
    )
