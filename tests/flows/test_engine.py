from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import (
    BotUttered,
    ConfirmationRequested,
    CustomerIdentified,
    Event,
    FlowCancelled,
    FlowCompleted,
    FlowStarted,
    HandoffRequested,
    SlotRejected,
    SlotRequested,
    SlotSet,
    UserUttered,
)
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.flows.actions.calendar import Appointment
from cxbot.flows.spec import SlotSpec
from cxbot.testing import FixedClock
from cxbot.types import Reply

if TYPE_CHECKING:
    from cxbot.embeddings import Matrix, Vector

ELEANOR = "C-1001"
TOMASZ = "C-1002"
PRIYA = "C-1003"
PREFILLED = "Book a mortgage appointment at Harbour Street next Tuesday at 10am"
CONFIRM_TUESDAY_10 = (
    "To confirm: a mortgage appointment at our Harbour Street branch on Tuesday 1 December "
    "at 10:00. Shall I book it?"
)


class RememberingEmbedder:
    """The session's MiniLM, keeping document vectors so each new assistant warms up fast."""

    def __init__(self, model: SentenceTransformerEmbedder) -> None:
        self.model = model
        self.documents: dict[str, Vector] = {}

    @property
    def dimension(self) -> int:
        return self.model.dimension

    def warm_up(self) -> None:
        self.model.warm_up()

    def embed_query(self, text: str) -> Vector:
        return self.model.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        missing = [t for t in dict.fromkeys(texts) if t not in self.documents]
        if missing:
            self.documents.update(zip(missing, self.model.embed_documents(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.documents[t] for t in texts])


@pytest.fixture(scope="module")
def remembering(embedder: SentenceTransformerEmbedder) -> RememberingEmbedder:
    return RememberingEmbedder(embedder)


@pytest.fixture
def bot(make_bot: Callable[..., Assistant], remembering: RememberingEmbedder) -> Assistant:
    return make_bot(embedder=remembering)


def plain(events: Sequence[Event]) -> list[Event]:
    """Events with the classifier's confidence zeroed (it depends on the model's floats)."""
    return [
        dataclasses.replace(e, confidence=0.0) if isinstance(e, UserUttered) else e for e in events
    ]


def kinds(reply: Reply) -> list[str]:
    return [e.kind for e in reply.events]


def slot(bot: Assistant, flow: str, name: str) -> SlotSpec:
    return next(s for s in bot.pipeline.flows.flows[flow].slots if s.name == name)


def upcoming(bot: Assistant, customer: str, clock: FixedClock) -> list[Appointment]:
    return bot.deps.calendar.upcoming(customer, clock())


def say(bot: Assistant, conversation: str, customer: str | None, *texts: str) -> Reply:
    reply = None
    for text in texts:
        reply = bot.respond(conversation, text, customer_id=customer)
    assert reply is not None
    return reply


# -- booking -------------------------------------------------------------------------------


def test_prefilled_request_goes_straight_to_confirmation_and_books(
    bot: Assistant, clock: FixedClock
) -> None:
    first = bot.respond("c1", PREFILLED, customer_id=ELEANOR)

    assert first.route == "flow"
    assert first.intent == "book_appointment"
    assert first.text == CONFIRM_TUESDAY_10
    assert upcoming(bot, ELEANOR, clock) == []

    done = bot.respond("c1", "yes", customer_id=ELEANOR)

    assert done.route == "flow"
    assert FlowCompleted("book_appointment", "done") in done.events
    [booked] = upcoming(bot, ELEANOR, clock)
    assert (booked.branch, booked.topic, booked.start) == (
        "Harbour Street",
        "mortgage",
        datetime(2026, 12, 1, 10, 0),
    )
    assert booked.advisor == "A-01"
    assert done.text.startswith(
        "Done — your mortgage appointment at Harbour Street is booked for Tuesday 1 December "
        "at 10:00."
    )
    assert f"Your reference is {booked.id}." in done.text
    assert bot.state("c1").flow is None


def test_prefilled_start_emits_events_in_order(bot: Assistant) -> None:
    text = "Book a mortgage appointment at Harbour Street"
    reply = bot.respond("c1", text, customer_id=ELEANOR)

    ask = "Which day suits you? Advisors are available Monday to Friday."
    assert plain(reply.events) == [
        CustomerIdentified(ELEANOR),
        UserUttered(text, "book_appointment", 0.0),
        FlowStarted("book_appointment"),
        SlotSet("branch", "Harbour Street"),
        SlotSet("topic", "mortgage"),
        SlotRequested("date"),
        BotUttered(ask, "flow"),
    ]
    assert reply.text == ask
    assert plain(bot.events("c1")) == plain(reply.events)


def test_full_prefill_emits_confirmation_events(bot: Assistant) -> None:
    reply = bot.respond("c1", PREFILLED)

    assert plain(reply.events) == [
        UserUttered(PREFILLED, "book_appointment", 0.0),
        FlowStarted("book_appointment"),
        SlotSet("branch", "Harbour Street"),
        SlotSet("topic", "mortgage"),
        SlotSet("date", "2026-12-01"),
        SlotSet("time", "10:00"),
        ConfirmationRequested("book_appointment"),
        BotUttered(CONFIRM_TUESDAY_10, "flow"),
    ]


def test_slot_by_slot_booking(bot: Assistant, clock: FixedClock) -> None:
    turns = [
        (
            "I'd like to book an appointment",
            "branch",
            "Which branch would you like to visit? We have Harbour Street, Market Square, "
            "Old Town or Riverside.",
        ),
        (
            "Riverside",
            "topic",
            "What would you like to talk about — mortgage, savings, business or general?",
        ),
        ("an ISA", "date", "Which day suits you? Advisors are available Monday to Friday."),
        (
            "Thursday",
            "time",
            "What time would you like? Appointments start on the hour from 09:00 to 16:00.",
        ),
    ]
    for text, requested, question in turns:
        reply = bot.respond("c1", text, customer_id=PRIYA)
        assert reply.text == question
        assert SlotRequested(requested) in reply.events
        state = bot.state("c1")
        assert state.flow is not None and state.flow.requested == requested

    confirm = bot.respond("c1", "2pm", customer_id=PRIYA)
    assert plain(confirm.events) == [
        UserUttered("2pm", None, 0.0),
        SlotSet("time", "14:00"),
        ConfirmationRequested("book_appointment"),
        BotUttered(confirm.text, "flow"),
    ]
    assert confirm.text == (
        "To confirm: a savings appointment at our Riverside branch on Thursday 26 November "
        "at 14:00. Shall I book it?"
    )
    flow = bot.state("c1").flow
    assert flow is not None and flow.awaiting_confirmation
    assert dict(flow.slots) == {
        "branch": "Riverside",
        "topic": "savings",
        "date": "2026-11-26",
        "time": "14:00",
    }

    say(bot, "c1", PRIYA, "yes please")
    [booked] = upcoming(bot, PRIYA, clock)
    assert (booked.branch, booked.topic, booked.start) == (
        "Riverside",
        "savings",
        datetime(2026, 11, 26, 14, 0),
    )


def test_correction_at_confirmation_asks_again_and_books_the_new_time(
    bot: Assistant, clock: FixedClock
) -> None:
    say(bot, "c1", ELEANOR, PREFILLED)

    corrected = bot.respond("c1", "actually make it 3pm", customer_id=ELEANOR)

    assert corrected.text == CONFIRM_TUESDAY_10.replace("10:00", "15:00")
    assert SlotSet("time", "15:00") in corrected.events
    assert ConfirmationRequested("book_appointment") in corrected.events
    assert upcoming(bot, ELEANOR, clock) == []

    say(bot, "c1", ELEANOR, "yes")
    assert [a.start for a in upcoming(bot, ELEANOR, clock)] == [datetime(2026, 12, 1, 15, 0)]


def test_no_at_confirmation_then_changing_the_date(bot: Assistant, clock: FixedClock) -> None:
    say(bot, "c1", ELEANOR, PREFILLED)

    declined = bot.respond("c1", "no", customer_id=ELEANOR)
    assert declined.text == "No problem. What would you like to change (branch, topic, date, time)?"
    assert upcoming(bot, ELEANOR, clock) == []

    which = bot.respond("c1", "the date", customer_id=ELEANOR)
    assert which.text == slot(bot, "book_appointment", "date").ask
    flow = bot.state("c1").flow
    assert flow is not None and flow.requested == "date" and "date" not in flow.slots

    confirm = bot.respond("c1", "next Wednesday", customer_id=ELEANOR)
    assert confirm.text == CONFIRM_TUESDAY_10.replace("Tuesday 1 December", "Wednesday 2 December")

    say(bot, "c1", ELEANOR, "yes")
    assert [a.start for a in upcoming(bot, ELEANOR, clock)] == [datetime(2026, 12, 2, 10, 0)]


def test_no_with_a_new_value_at_confirmation_changes_it(bot: Assistant) -> None:
    say(bot, "c1", ELEANOR, PREFILLED)

    reply = bot.respond("c1", "no, Thursday 26 November please", customer_id=ELEANOR)

    assert SlotSet("date", "2026-11-26") in reply.events
    assert reply.text == CONFIRM_TUESDAY_10.replace("Tuesday 1 December", "Thursday 26 November")


def test_no_naming_a_slot_at_confirmation_asks_for_that_slot(bot: Assistant) -> None:
    say(bot, "c1", ELEANOR, PREFILLED)

    reply = bot.respond("c1", "No, change the date", customer_id=ELEANOR)

    assert reply.text == slot(bot, "book_appointment", "date").ask
    flow = bot.state("c1").flow
    assert flow is not None and flow.requested == "date"


@pytest.mark.parametrize("text", ["never mind", "forget it", "actually I changed my mind"])
def test_cancel_mid_flow_ends_it_without_booking(
    bot: Assistant, clock: FixedClock, text: str
) -> None:
    say(bot, "c1", ELEANOR, "Book a mortgage appointment at Harbour Street next Tuesday")

    reply = bot.respond("c1", text, customer_id=ELEANOR)

    assert reply.route == "flow"
    assert FlowCancelled("book_appointment") in reply.events
    assert reply.text == bot.pipeline.flows.flows["book_appointment"].cancelled
    assert bot.state("c1").flow is None
    assert upcoming(bot, ELEANOR, clock) == []


# -- validation and retries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "name", "reason"),
    [
        ("Saturday", "date", "advisors are not available on that day"),
        ("Sunday 29 November", "date", "advisors are not available on that day"),
        ("last Monday", "date", "that date has already passed"),
        ("23/11/2026", "date", "that date has already passed"),
        (
            "8pm",
            "time",
            "appointments start on the hour between 09:00 and the last slot before 17:00",
        ),
        (
            "5pm",
            "time",
            "appointments start on the hour between 09:00 and the last slot before 17:00",
        ),
        (
            "10:30",
            "time",
            "appointments start on the hour between 09:00 and the last slot before 17:00",
        ),
    ],
)
def test_invalid_value_is_rejected_with_reason_and_reasked(
    bot: Assistant, answer: str, name: str, reason: str
) -> None:
    start = "Book a mortgage appointment at Harbour Street"
    if name == "time":
        start += " next Tuesday"
    say(bot, "c1", ELEANOR, start)

    reply = bot.respond("c1", answer, customer_id=ELEANOR)

    assert reply.route == "flow"
    assert SlotRejected(name, reason) in reply.events
    assert reply.text == f"Sorry, {reason}. {slot(bot, 'book_appointment', name).reask}"
    flow = bot.state("c1").flow
    assert flow is not None
    assert flow.requested == name and name not in flow.slots and flow.retries == 1


def test_valid_answer_after_a_rejection_moves_on(bot: Assistant) -> None:
    say(bot, "c1", ELEANOR, "Book a mortgage appointment at Harbour Street", "Saturday")

    reply = bot.respond("c1", "Monday 30 November", customer_id=ELEANOR)

    assert SlotSet("date", "2026-11-30") in reply.events
    assert reply.text == slot(bot, "book_appointment", "time").ask
    flow = bot.state("c1").flow
    assert flow is not None and flow.requested == "time" and flow.retries == 0


def test_unrecognised_answer_is_reasked(bot: Assistant) -> None:
    say(bot, "c1", ELEANOR, "Book a mortgage appointment at Harbour Street")

    reply = bot.respond("c1", "blah blah", customer_id=ELEANOR)

    assert reply.route == "flow"
    assert SlotRejected("date", "not understood") in reply.events
    assert reply.text == slot(bot, "book_appointment", "date").reask


@pytest.mark.parametrize(
    "answers", [("blah blah", "purple monkey"), ("Saturday", "Sunday"), ("blah blah", "Saturday")]
)
def test_two_failed_attempts_hand_over_with_the_slots_so_far(
    bot: Assistant, clock: FixedClock, answers: tuple[str, str]
) -> None:
    say(bot, "c1", ELEANOR, "Book a mortgage appointment at Harbour Street", answers[0])

    reply = bot.respond("c1", answers[1], customer_id=ELEANOR)

    assert reply.route == "handoff"
    assert reply.events[-1] == HandoffRequested("flow_retries", "customer-care")
    summary = reply.handoff
    assert summary is not None
    assert summary.reason == "flow_retries"
    assert summary.flow == "book_appointment"
    assert summary.slots == {"branch": "Harbour Street", "topic": "mortgage"}
    assert summary.customer is not None and summary.customer.id == ELEANOR
    assert summary.last_user_messages[-1] == answers[1]
    assert bot.state("c1").handed_off
    assert upcoming(bot, ELEANOR, clock) == []


# -- conflicts -----------------------------------------------------------------------------


def test_taken_slot_offers_three_alternatives_and_books_the_one_picked(
    bot: Assistant, clock: FixedClock
) -> None:
    say(bot, "first", ELEANOR, PREFILLED, "yes")

    say(bot, "second", TOMASZ, PREFILLED)
    conflict = bot.respond("second", "yes", customer_id=TOMASZ)

    assert conflict.route == "flow"
    assert conflict.text == (
        "Sorry, that time is already taken at Harbour Street. The nearest free slots are "
        "Tuesday 1 December at 11:00, Tuesday 1 December at 12:00 or Tuesday 1 December at "
        "13:00. What time would suit you?"
    )
    assert plain(conflict.events)[1:3] == [SlotSet("time", None), SlotRequested("time")]
    assert not any(isinstance(e, FlowCompleted) for e in conflict.events)
    assert upcoming(bot, TOMASZ, clock) == []

    confirm = bot.respond("second", "Tuesday 1 December at 12:00", customer_id=TOMASZ)
    assert confirm.text == CONFIRM_TUESDAY_10.replace("10:00", "12:00")

    done = bot.respond("second", "yes", customer_id=TOMASZ)
    assert FlowCompleted("book_appointment", "done") in done.events
    assert [a.start for a in upcoming(bot, TOMASZ, clock)] == [datetime(2026, 12, 1, 12, 0)]
    assert [a.start for a in upcoming(bot, ELEANOR, clock)] == [datetime(2026, 12, 1, 10, 0)]


def test_other_advisor_at_the_branch_takes_a_different_topic(
    bot: Assistant, clock: FixedClock
) -> None:
    say(bot, "first", ELEANOR, PREFILLED, "yes")

    done = say(
        bot,
        "second",
        TOMASZ,
        "Book a business appointment at Harbour Street next Tuesday at 10am",
        "yes",
    )

    assert FlowCompleted("book_appointment", "done") in done.events
    [booked] = upcoming(bot, TOMASZ, clock)
    assert (booked.advisor, booked.start) == ("A-02", datetime(2026, 12, 1, 10, 0))


def test_picking_an_alternative_in_a_later_week_books_that_day(
    bot: Assistant, clock: FixedClock
) -> None:
    request = "Book a mortgage appointment at Harbour Street on 8 December at 4pm"
    say(bot, "first", ELEANOR, request, "yes")
    conflict = say(bot, "second", TOMASZ, request, "yes")
    assert "Wednesday 9 December at 10:00" in conflict.text

    confirm = bot.respond("second", "Wednesday 9 December at 10:00", customer_id=TOMASZ)

    assert SlotSet("date", "2026-12-09") in confirm.events
    say(bot, "second", TOMASZ, "yes")
    assert [a.start for a in upcoming(bot, TOMASZ, clock)] == [datetime(2026, 12, 9, 10, 0)]


# -- cancel and reschedule -----------------------------------------------------------------


def test_cancel_flow_selects_the_only_booking_and_cancels_it(
    bot: Assistant, clock: FixedClock
) -> None:
    say(bot, "book", ELEANOR, PREFILLED, "yes")
    [booked] = upcoming(bot, ELEANOR, clock)

    confirm = bot.respond("c1", "I need to cancel my appointment", customer_id=ELEANOR)

    assert confirm.intent == "cancel_appointment"
    assert SlotSet("appointment", booked.id) in confirm.events
    assert confirm.text == (
        "Shall I cancel your mortgage appointment at Harbour Street on Tuesday 1 December at 10:00?"
    )

    done = bot.respond("c1", "yes", customer_id=ELEANOR)

    assert FlowCompleted("cancel_appointment", "done") in done.events
    assert done.text == (
        "Your mortgage appointment at Harbour Street on Tuesday 1 December at 10:00 has been "
        f"cancelled (reference {booked.id})."
    )
    assert upcoming(bot, ELEANOR, clock) == []
    assert bot.state("c1").flow is None


def test_cancel_flow_picks_one_of_several_bookings(bot: Assistant, clock: FixedClock) -> None:
    calendar = bot.deps.calendar
    keep = calendar.book(ELEANOR, "Harbour Street", "mortgage", datetime(2026, 12, 1, 10))
    drop = calendar.book(ELEANOR, "Riverside", "savings", datetime(2026, 12, 2, 14))

    ask = bot.respond("c1", "I need to cancel my appointment", customer_id=ELEANOR)
    assert ask.text == (
        f"Which appointment would you like to cancel — {keep.label} or {drop.label}?"
    )

    confirm = bot.respond("c1", "the second one", customer_id=ELEANOR)
    assert confirm.text == f"Shall I cancel your {drop.label}?"

    say(bot, "c1", ELEANOR, "yes")
    assert upcoming(bot, ELEANOR, clock) == [keep]


def test_cancel_flow_without_bookings_ends_politely(bot: Assistant) -> None:
    reply = bot.respond("c1", "I need to cancel my appointment", customer_id=TOMASZ)

    assert reply.route == "flow"
    assert plain(reply.events)[2:4] == [
        FlowStarted("cancel_appointment"),
        FlowCancelled("cancel_appointment"),
    ]
    assert reply.text == "I can't find any upcoming appointments for you."
    assert bot.state("c1").flow is None


def test_reschedule_flow_moves_the_booking(bot: Assistant, clock: FixedClock) -> None:
    say(bot, "book", ELEANOR, PREFILLED, "yes")
    [booked] = upcoming(bot, ELEANOR, clock)

    first = bot.respond("c1", "I need to reschedule my appointment", customer_id=ELEANOR)
    assert first.intent == "reschedule_appointment"
    assert SlotSet("appointment", booked.id) in first.events
    assert first.text == slot(bot, "reschedule_appointment", "date").ask

    confirm = bot.respond("c1", "Thursday at 2pm", customer_id=ELEANOR)
    assert confirm.text == (f"Shall I move your {booked.label} to Thursday 26 November at 14:00?")

    done = bot.respond("c1", "yes", customer_id=ELEANOR)
    assert FlowCompleted("reschedule_appointment", "done") in done.events
    assert done.text == (
        f"Done — it's now on Thursday 26 November at 14:00 (reference {booked.id})."
    )
    [moved] = upcoming(bot, ELEANOR, clock)
    assert (moved.id, moved.start) == (booked.id, datetime(2026, 11, 26, 14, 0))


def test_reschedule_into_a_taken_slot_offers_alternatives(
    bot: Assistant, clock: FixedClock
) -> None:
    calendar = bot.deps.calendar
    mine = calendar.book(ELEANOR, "Harbour Street", "mortgage", datetime(2026, 12, 1, 10))
    calendar.book(TOMASZ, "Harbour Street", "mortgage", datetime(2026, 12, 2, 10))

    say(bot, "c1", ELEANOR, "I need to reschedule my appointment")
    say(bot, "c1", ELEANOR, "next Wednesday at 10am")
    conflict = bot.respond("c1", "yes", customer_id=ELEANOR)

    assert conflict.text == (
        "Sorry, that time is taken. The nearest free slots are Wednesday 2 December at 11:00, "
        "Wednesday 2 December at 12:00 or Wednesday 2 December at 13:00. Which would you like?"
    )
    assert upcoming(bot, ELEANOR, clock) == [mine]

    say(bot, "c1", ELEANOR, "11am", "yes")
    [moved] = upcoming(bot, ELEANOR, clock)
    assert (moved.id, moved.start) == (mine.id, datetime(2026, 12, 2, 11, 0))


@pytest.mark.parametrize(
    "text", ["I need to cancel my appointment", "I need to reschedule my appointment"]
)
def test_flow_for_customers_asks_an_anonymous_user_for_their_customer_number(
    bot: Assistant, text: str
) -> None:
    reply = bot.respond("c1", text)

    assert reply.route == "flow"
    assert "customer number" in reply.text  # step-up verification (tests/identity)
    assert not any(isinstance(e, FlowStarted) for e in reply.events)
    assert bot.state("c1").flow is None


@pytest.mark.parametrize(
    "text", ["I need to cancel my appointment", "I need to reschedule my appointment"]
)
def test_flow_for_customers_asks_an_anonymous_user_to_sign_in_without_verification(
    make_bot: Callable[..., Assistant], remembering: RememberingEmbedder, text: str
) -> None:
    bot = make_bot(embedder=remembering, env={"CXBOT_IDENTITY__ASK_CUSTOMER_ID": "false"})
    reply = bot.respond("c1", text)

    assert reply.route == "flow"
    assert "sign in" in reply.text
    assert not any(isinstance(e, FlowStarted) for e in reply.events)
    assert bot.state("c1").flow is None


# -- digressions and restarts --------------------------------------------------------------


def test_question_mid_flow_is_answered_then_the_slot_is_asked_again(
    bot: Assistant, clock: FixedClock
) -> None:
    say(bot, "c1", ELEANOR, "Book a mortgage appointment at Harbour Street")

    reply = bot.respond("c1", "What are the fees for international transfers?", customer_id=ELEANOR)

    assert reply.route == "flow"
    assert reply.citations
    assert any(c.source.startswith("transfers/") for c in reply.citations)
    answer, resume = reply.text.split("\n\n")
    assert "[1]" in answer
    assert resume == (f"To carry on where we were: {slot(bot, 'book_appointment', 'date').ask}")
    assert kinds(reply) == ["user_uttered", "bot_uttered"]
    flow = bot.state("c1").flow
    assert flow is not None and flow.requested == "date" and flow.retries == 0

    confirm = bot.respond("c1", "next Tuesday at 10am", customer_id=ELEANOR)
    assert confirm.text == CONFIRM_TUESDAY_10
    say(bot, "c1", ELEANOR, "yes")
    assert [a.start for a in upcoming(bot, ELEANOR, clock)] == [datetime(2026, 12, 1, 10, 0)]


def test_flow_survives_a_restart_of_the_assistant(
    make_bot: Callable[..., Assistant], remembering: RememberingEmbedder, clock: FixedClock
) -> None:
    before = make_bot(embedder=remembering)
    say(before, "c1", ELEANOR, "Book a mortgage appointment at Harbour Street")
    before.close()

    after = make_bot(embedder=remembering)
    confirm = after.respond("c1", "next Tuesday at 11am")

    assert confirm.text == CONFIRM_TUESDAY_10.replace("10:00", "11:00")
    say(after, "c1", None, "yes")
    [booked] = upcoming(after, ELEANOR, clock)
    assert (booked.branch, booked.topic, booked.start) == (
        "Harbour Street",
        "mortgage",
        datetime(2026, 12, 1, 11, 0),
    )


def test_a_time_already_gone_today_is_refused(bot: Assistant) -> None:
    # the clock is Wednesday 25 November 2026, 10:00
    reply = bot.respond(
        "past", "Book a mortgage appointment at Harbour Street today at 9am", customer_id=ELEANOR
    )
    assert "already passed" in reply.text
    assert bot.state("past").flow is not None
    assert "time" not in bot.state("past").flow.slots  # type: ignore[union-attr]
    later = bot.respond("past", "2pm then", customer_id=ELEANOR)
    assert "14:00" in later.text and "Shall I book it?" in later.text


def test_same_day_needs_two_hours_notice(bot: Assistant) -> None:
    reply = bot.respond(
        "notice", "Book a savings appointment at Riverside today at 11am", customer_id=ELEANOR
    )
    assert "2 hours' notice" in reply.text
    later = bot.respond("notice", "make it 3pm", customer_id=ELEANOR)
    assert "15:00" in later.text and "Shall I book it?" in later.text


def test_bank_holidays_and_the_booking_horizon_are_refused(bot: Assistant) -> None:
    ask = "Book a savings appointment at Riverside on {} at 10am"
    holiday = bot.respond("holiday", ask.format("25 December"), customer_id=ELEANOR)
    assert "bank holiday" in holiday.text
    far = bot.respond("horizon", ask.format("1 March 2027"), customer_id=ELEANOR)
    assert "8 weeks ahead" in far.text


LANGUAGE_SLOT = """  - name: language
    type: choice
    choices: [English, Welsh, Polish]
    when: {topic: [mortgage]}
    ask: Which language should your mortgage advisor speak — {{ options }}?
"""


def _with_language_slot(
    project: Path, slot: str = LANGUAGE_SLOT, before: str = "  - name: date"
) -> None:
    flow = project / "flows" / "book_appointment.yaml"
    text = flow.read_text(encoding="utf-8")
    flow.write_text(text.replace(before, slot + before, 1), encoding="utf-8")


def test_conditional_slot_is_asked_only_when_its_condition_holds(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    _with_language_slot(project)
    bot = make_bot()
    mortgage = say(bot, "cond-1", ELEANOR, "Book a mortgage appointment at Harbour Street")
    assert "Which language" in mortgage.text
    reply = say(bot, "cond-1", None, "Welsh please")
    assert bot.state("cond-1").flow.slots["language"] == "Welsh"  # type: ignore[union-attr]
    assert "Which day" in reply.text
    savings = say(bot, "cond-2", ELEANOR, "Book a savings appointment at Harbour Street")
    assert "Which language" not in savings.text and "Which day" in savings.text


def test_condition_on_a_later_slot_fails_at_load_with_file_and_line(
    project: Path, make_bot: Callable[..., Assistant]
) -> None:
    from cxbot.errors import FlowSpecError

    _with_language_slot(project, LANGUAGE_SLOT.replace("{topic: [mortgage]}", "{time: ['10:00']}"))
    with pytest.raises(FlowSpecError) as info:
        make_bot()
    message = str(info.value)
    assert "book_appointment.yaml" in message and "not an earlier slot" in message
