"""The handoff triggers as pure functions: each fires on its case and not on the near miss."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cxbot.config import BusinessHoursConfig, HandoffConfig
from cxbot.conversation.events import (
    BotUttered,
    FlowStarted,
    GuardrailTriggered,
    HandedBack,
    HandoffRequested,
    TurnAssessed,
    event_from_dict,
    event_to_dict,
)
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState, FlowFrame
from cxbot.handoff.triggers import (
    asks_for_person,
    customer_request,
    guardrail_blocks,
    low_confidence,
    negative_sentiment,
    opening,
    policy_topic,
    score_sentiment,
    select_queue,
    unsure,
)
from cxbot.types import NLUResult

CONFIG = HandoffConfig()
HOURS = BusinessHoursConfig(
    timezone="Europe/London",
    weekly={"mon": "08:00-20:00", "tue": "08:00-20:00", "wed": "08:00-20:00",
            "thu": "08:00-20:00", "fri": "08:00-20:00", "sat": "09:00-17:00"},
    holidays=(datetime(2026, 12, 25).date(),),
    after_hours_queue="overnight",
)  # fmt: skip


def nlu(intent: str | None = None, confidence: float = 0.9) -> NLUResult:
    return NLUResult(intent=intent, confidence=confidence, ranking=(), entities=())


# -- explicit request ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "get me an agent",
        "Can I speak to a real person please",
        "I'd rather talk to someone about this",
        "Could a representative call me back?",
        "operator",
        "Put me through to a human",
        "I don't want a chatbot",
        "connect me with a colleague",
        "Can I have a word with an actual person?",
    ],
)
def test_explicit_requests_in_several_phrasings(text: str) -> None:
    assert asks_for_person(text)
    assert customer_request(nlu(None), text, CONFIG) == "customer_request"


@pytest.mark.parametrize(
    "text",
    [
        "My estate agent needs a copy of my mortgage offer",
        "How do I report a human error in a payment I made?",
        "What number do I call for bereavement support?",
        "Do travel agents take Northwind cards?",
        "What are your opening hours?",
        "Is my card blocked?",
    ],
)
def test_near_misses_are_not_requests(text: str) -> None:
    assert not asks_for_person(text)
    assert customer_request(nlu(None), text, CONFIG) is None


def test_the_human_agent_intent_is_a_request_and_the_phrase_rule_can_be_off() -> None:
    assert customer_request(nlu("human_agent"), "whatever", CONFIG) == "customer_request"
    off = HandoffConfig(request_phrases=False)
    assert customer_request(nlu(None), "get me an agent", off) is None


# -- policy topics ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("I've been scammed, someone took money from my account", "fraud"),
        ("I didn't make these payments from last night", "fraud"),
        ("Someone has stolen money from my savings", "fraud"),
        ("My husband passed away last month", "bereavement"),
        ("My mum died recently, what happens to her ISA?", "bereavement"),
        ("I want to make a formal complaint about my mortgage", "complaint"),
        ("I\u2019d like to complain about the branch staff", "complaint"),
    ],
)
def test_policy_topics(text: str, topic: str) -> None:
    assert policy_topic(nlu(), text, CONFIG) == topic


@pytest.mark.parametrize(
    "text",
    [
        "How do I report fraud?",
        "What happens to joint accounts when someone dies?",
        "If someone used my card without permission, when do I get the money back?",
        "How long will you take to respond to my complaint?",
        "Can I go to the Financial Ombudsman?",
    ],
)
def test_questions_about_a_policy_topic_are_not_the_topic(text: str) -> None:
    assert policy_topic(nlu(), text, CONFIG) is None


def test_a_topic_can_be_an_intent_and_its_queue_is_configured() -> None:
    config = HandoffConfig.model_validate(
        {
            "policy_topics": {"vulnerability": {"intents": ["vulnerable_customer"]}},
            "queues": {"vulnerability": "care-team"},
        }
    )
    assert policy_topic(nlu("vulnerable_customer"), "hello", config) == "vulnerability"
    assert policy_topic(nlu(), "I've been scammed", config) is None  # defaults replaced
    assert select_queue(config, "policy_topic", topic="vulnerability") == "care-team"


# -- sentiment ----------------------------------------------------------------------------
def test_sentiment_scores() -> None:
    assert score_sentiment("This is useless and ridiculous").label == "negative"
    assert score_sentiment("WHY DOES NOTHING WORK HERE").score < 0
    assert score_sentiment("where is my card!!!").score < 0
    assert score_sentiment("How do I change my PIN at an ATM?").label == "neutral"
    assert score_sentiment("thanks, that's great").label == "positive"
    assert score_sentiment("that was not helpful").label == "negative"
    mild = score_sentiment("The app is a bit annoying, how do I freeze my card?")
    assert -2 < mild.score < 0


def test_negative_trend() -> None:
    assert negative_sentiment([-2.0, -1.0], CONFIG) == "negative_sentiment"
    assert negative_sentiment([-1.0, 0.0, -1.0], CONFIG) is None
    assert negative_sentiment([-1.0], CONFIG) is None
    assert negative_sentiment([-5.0], CONFIG) == "negative_sentiment"  # sum of the last three
    assert negative_sentiment([1.0, -2.0, 0.0, -1.5], CONFIG) is None
    strict = HandoffConfig(negative_turns=3)
    assert negative_sentiment([-1.0, -1.0], strict) is None


# -- confidence and blocks ----------------------------------------------------------------
def test_low_confidence_counts_turns_outside_flows_in_a_row() -> None:
    state = ConversationState("c")
    assert unsure(nlu(None, 0.4), state, CONFIG)
    assert not unsure(nlu(None, 0.9), state, CONFIG)
    in_flow = ConversationState("c", flow=FlowFrame("book_appointment"))
    assert not unsure(nlu(None, 0.2), in_flow, CONFIG)
    events = [TurnAssessed(True, 0.0), TurnAssessed(True, 0.0)]
    assert low_confidence(apply_all(state, events), CONFIG) is None
    assert low_confidence(apply_all(state, [*events, TurnAssessed(True, 0.0)]), CONFIG)
    reset = [*events, TurnAssessed(False, 0.0), TurnAssessed(True, 0.0)]
    assert low_confidence(apply_all(state, reset), CONFIG) is None


def test_guardrail_blocks_count_across_the_conversation() -> None:
    block = GuardrailTriggered("input", "injection", "block", "attack")
    rewrite = GuardrailTriggered("input", "pii", "rewrite", "email")
    state = apply_all(ConversationState("c"), [block, rewrite, BotUttered("ok", "rag")])
    assert state.blocked_turns == 1 and guardrail_blocks(state, CONFIG) is None
    state = apply_all(state, [block])
    assert guardrail_blocks(state, CONFIG) == "guardrail_blocks"


# -- hours and queues ---------------------------------------------------------------------
def test_business_hours_with_a_fixed_clock() -> None:
    assert opening(datetime(2026, 11, 25, 10, 0), HOURS).open  # Wednesday morning
    assert opening(datetime(2026, 11, 28, 16, 59), HOURS).open  # Saturday afternoon
    evening = opening(datetime(2026, 11, 25, 20, 0), HOURS)
    assert not evening.open and evening.next_open is not None
    assert evening.describe(datetime(2026, 11, 25, 20, 0)) == "tomorrow at 08:00"
    saturday_night = opening(datetime(2026, 11, 28, 22, 30), HOURS)
    assert saturday_night.describe(datetime(2026, 11, 28, 22, 30)) == "on Monday at 08:00"
    christmas = opening(datetime(2026, 12, 25, 11, 0), HOURS)
    assert not christmas.open
    assert christmas.next_open is not None and christmas.next_open.day == 26
    assert opening(datetime(2026, 11, 29, 12, 0), None).open  # no hours: always open


def test_an_aware_clock_is_read_in_the_configured_zone() -> None:
    # 07:30 in New York is 12:30 in London: open
    ny = datetime(2026, 11, 25, 7, 30, tzinfo=ZoneInfo("America/New_York"))
    assert opening(ny, HOURS).open
    tokyo = datetime(2026, 11, 26, 6, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 21:00 London
    assert not opening(tokyo, HOURS).open


def test_queue_selection() -> None:
    assert select_queue(CONFIG, "policy_topic", topic="fraud") == "fraud-team"
    assert select_queue(CONFIG, "policy_topic", topic="bereavement") == "bereavement"
    assert select_queue(CONFIG, "customer_request", topic="complaint") == CONFIG.queue
    by_reason = HandoffConfig(queues={"guardrail_blocks": "security", "book_appointment": "bk"})
    assert select_queue(by_reason, "guardrail_blocks") == "security"
    assert select_queue(by_reason, "flow_retries", intent="book_appointment") == "bk"
    with_hours = HandoffConfig(hours=HOURS)
    assert select_queue(with_hours, "policy_topic", topic="fraud", after_hours=True) == "overnight"
    assert select_queue(with_hours, "policy_topic", topic="fraud") == "fraud-team"


@pytest.mark.parametrize(
    "hours",
    [
        {"timezone": "Mars/Olympus"},
        {"weekly": {"mon": "9-5"}},
        {"weekly": {"mon": "17:00-09:00"}},
        {"weekly": {"someday": "09:00-17:00"}},
    ],
)
def test_bad_hours_are_config_errors(hours: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HandoffConfig.model_validate({"hours": hours})


def test_bad_topic_phrase_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="regular expression"):
        HandoffConfig.model_validate({"policy_topics": {"x": {"phrases": ["(unclosed"]}}})


# -- state and events ---------------------------------------------------------------------
def test_states_stored_before_these_fields_still_load() -> None:
    old = {"conversation_id": "c", "turn": 3, "handed_off": True, "failed_turns": 1}
    state = ConversationState.from_json(old)
    assert (state.unsure_turns, state.blocked_turns, state.sentiment, state.topic) == (
        0,
        0,
        (),
        None,
    )
    assert ConversationState.from_json(state.to_json()) == state
    assert event_from_dict({"kind": "handoff_requested", "reason": "x", "queue": "q"}) == (
        HandoffRequested("x", "q")
    )


def test_new_events_round_trip_and_hand_back_resets_the_counters() -> None:
    events = [
        BotUttered("answer", "rag", sources=("cards/change-your-pin.md",)),
        TurnAssessed(True, -2.0, "fraud"),
        HandoffRequested("policy_topic", "fraud-team", topic="fraud", after_hours=True),
        HandedBack("sorted the card", {"date": "2026-11-27"}, "A-7"),
    ]
    for event in events:
        assert event_from_dict(event_to_dict(event)) == event
    state = apply_all(ConversationState("c"), [FlowStarted("book_appointment"), *events[:3]])
    assert state.handed_off and state.topic == "fraud" and state.sentiment == (-2.0,)
    back = apply_all(state, events[3:])
    assert not back.handed_off
    assert (back.unsure_turns, back.failed_turns, back.sentiment) == (0, 0, ())
    assert back.flow is not None and back.flow.retries == 0
