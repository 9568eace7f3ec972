"""Turns on each channel: the rendered reply, buttons from the flow, and one customer's
conversation moving from one channel to another."""

from __future__ import annotations

from collections.abc import Callable

from cxbot.assistant import Assistant
from cxbot.channels import contains_markdown
from cxbot.conversation.events import ConversationContinued
from cxbot.testing import FixedClock

BRANCHES = ("Harbour Street", "Market Square", "Old Town", "Riverside")


def test_a_reply_is_rendered_for_its_channel(bot: Assistant) -> None:
    question = "How do I dispute a card payment?"
    web = bot.respond("web-q", question)
    sms = bot.respond("sms-q", question, channel="sms")
    voice = bot.respond("voice-q", question, channel="voice")
    assert web.text == sms.text == voice.text  # the canonical text does not change
    assert web.rendered is not None and web.rendered.channel == "web"
    assert web.rendered.parts == (web.text,)
    assert sms.rendered is not None and sms.rendered.channel == "sms"
    assert all(len(p) <= 160 and not contains_markdown(p) for p in sms.rendered.parts)
    assert voice.rendered is not None
    assert not any("http" in p or contains_markdown(p) for p in voice.rendered.parts)


def test_flow_choices_are_buttons_where_the_channel_has_enough(bot: Assistant) -> None:
    ask = "I'd like to book an appointment"
    web = bot.respond("web-b", ask)
    assert web.rendered is not None and web.rendered.buttons == BRANCHES
    whatsapp = bot.respond("wa-b", ask, channel="whatsapp")
    assert whatsapp.rendered is not None and whatsapp.rendered.buttons == ()
    assert whatsapp.rendered.parts[0].endswith("4. Riverside")  # four branches: a list
    sms = bot.respond("sms-b", ask, channel="sms")
    assert sms.rendered is not None and sms.rendered.buttons == ()
    assert "Riverside" in " ".join(sms.rendered.parts)  # the question names them


def test_a_confirmation_offers_yes_and_no(bot: Assistant) -> None:
    for text in (
        "I'd like to book a savings appointment at Riverside",
        "next Monday",
        "10am",
    ):
        reply = bot.respond("wa-c", text, customer_id="C-1003", channel="whatsapp")
    assert "Shall I book it?" in reply.text
    assert reply.rendered is not None and reply.rendered.buttons == ("Yes", "No")


def test_voice_says_the_time_of_the_booking(bot: Assistant) -> None:
    for text in ("I'd like to book a savings appointment at Riverside", "next Monday"):
        bot.respond("voice-c", text, customer_id="C-1003", channel="voice")
    reply = bot.respond("voice-c", "2pm", customer_id="C-1003", channel="voice")
    assert "14:00" in reply.text
    assert reply.rendered is not None
    spoken = " ".join(reply.rendered.parts)
    assert "14:00" not in spoken and "2 pm" in spoken


def test_a_booking_started_on_the_web_finishes_by_sms(bot: Assistant) -> None:
    bot.respond(
        "web-7", "I'd like to book a savings appointment at Riverside", customer_id="C-1003"
    )
    bot.respond("web-7", "next Monday", customer_id="C-1003")
    # the same customer texts in: a new conversation id on another channel
    sms = bot.respond("sms-7", "10am please", customer_id="C-1003", channel="sms")
    assert "Shall I book it?" in sms.text
    assert sms.rendered is not None and sms.rendered.channel == "sms"
    carried = [e for e in bot.events("sms-7") if isinstance(e, ConversationContinued)]
    assert len(carried) == 1 and carried[0].source == "web-7"
    assert carried[0].slots == {"branch": "Riverside", "topic": "savings", "date": "2026-11-30"}
    done = bot.respond("sms-7", "yes", customer_id="C-1003", channel="sms")
    assert "booked" in done.text
    assert bot.state("sms-7").flow is None


def test_only_a_new_conversation_continues_the_latest_one(bot: Assistant) -> None:
    bot.respond(
        "tab-1", "I'd like to book a savings appointment at Riverside", customer_id="C-1003"
    )
    bot.respond("tab-2", "How do I change my PIN?", customer_id="C-1003")
    assert bot.state("tab-2").flow is not None  # new: it continues the open booking
    bot.respond("tab-1", "next Monday", customer_id="C-1003")
    # tab-1 is not new: the latest conversation (tab-2) is not carried back into it
    assert not any(isinstance(e, ConversationContinued) for e in bot.events("tab-1"))
    frame = bot.state("tab-1").flow
    assert frame is not None and frame.slots["date"] == "2026-11-30"


def test_the_context_of_another_channel_expires(bot: Assistant, clock: FixedClock) -> None:
    bot.respond(
        "web-8", "I'd like to book a savings appointment at Riverside", customer_id="C-1003"
    )
    clock.advance(days=2)  # channels.context_ttl_s: one day
    reply = bot.respond("sms-8", "10am please", customer_id="C-1003", channel="sms")
    assert bot.state("sms-8").flow is None
    assert not any(isinstance(e, ConversationContinued) for e in bot.events("sms-8"))
    assert "Shall I book it?" not in reply.text


def test_an_anonymous_conversation_is_never_continued(make_bot: Callable[..., Assistant]) -> None:
    bot = make_bot()
    bot.respond("web-9", "I'd like to book a savings appointment at Riverside")
    reply = bot.respond("sms-9", "next Monday", channel="sms")
    assert bot.state("sms-9").flow is None
    assert reply.route != "flow" or "Which" not in reply.text
