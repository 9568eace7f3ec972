"""Bad input: a typed error or a safe reply, and nothing lost from stored state."""

from __future__ import annotations

import pytest

from cxbot.assistant import Assistant
from cxbot.errors import InvalidMessage, TurnError, UnknownCustomer


@pytest.fixture
def mid_booking(bot: Assistant) -> Assistant:
    bot.respond("keep", "Book a savings appointment at Old Town", customer_id="C-1002")
    return bot


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   \n\t ",
        "x" * 100_000,
        b"\xff\xfe\x00\x81junk\x00",
        "\x00\x01\x02\x03\x04\x05",
        "\ufffd\ufffd\ufffd",
        None,
        12345,
    ],
    ids=["empty", "blank", "100kB", "binary", "control", "replacement", "none", "int"],
)
def test_unusable_message_is_a_typed_error_and_keeps_state(
    mid_booking: Assistant, message: object
) -> None:
    before = mid_booking.state("keep")
    events_before = mid_booking.events("keep")
    with pytest.raises(InvalidMessage):
        mid_booking.respond("keep", message, customer_id="C-1002")  # type: ignore[arg-type]
    assert mid_booking.state("keep") == before
    assert mid_booking.events("keep") == events_before
    assert before.flow is not None and before.flow.slots == {
        "branch": "Old Town",
        "topic": "savings",
    }


def test_unknown_customer_is_a_typed_error(mid_booking: Assistant) -> None:
    before = mid_booking.state("keep")
    with pytest.raises(UnknownCustomer) as info:
        mid_booking.respond("keep", "next Tuesday at 10am", customer_id="C-9999")
    assert "C-9999" in str(info.value)
    assert isinstance(info.value, TurnError)
    assert mid_booking.state("keep") == before


def test_valid_utf8_bytes_are_accepted(bot: Assistant) -> None:
    reply = bot.respond("bytes", b"How do I change my PIN?")  # type: ignore[arg-type]
    assert reply.route == "rag"


def test_control_characters_inside_text_are_dropped(bot: Assistant) -> None:
    reply = bot.respond("ctl", "How do I\x00 change my\x07 PIN?")
    assert reply.route == "rag"
    assert "\x00" not in bot.state("ctl").history[0][1]


def test_empty_conversation_id_is_rejected(bot: Assistant) -> None:
    with pytest.raises(InvalidMessage):
        bot.respond(" ", "hello")
