"""Idempotent turns: the same client message id gets the same reply and the turn runs
once (SQLite and Redis stores); the same id with another text is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import UserUttered
from cxbot.errors import InvalidMessage


def _sent(bot: Assistant, conversation: str) -> list[str]:
    return [e.text for e in bot.events(conversation) if isinstance(e, UserUttered)]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_retried_message_is_answered_once(
    backend: str, request: pytest.FixtureRequest, make_bot: Callable[..., Assistant]
) -> None:
    env: dict[str, str] = {}
    if backend == "redis":
        env = {
            "CXBOT_STORAGE__REDIS_URL": request.getfixturevalue("redis_url"),
            "CXBOT_STORAGE__REDIS_PREFIX": request.getfixturevalue("prefix"),
        }
    bot = make_bot(env=env)
    first = bot.respond("idem", "I'd like to book an appointment", message_id="m-1")
    again = bot.respond("idem", "I'd like to book an appointment", message_id="m-1")
    assert again.text == first.text and again.events == first.events
    assert again.route == first.route == "flow"
    assert _sent(bot, "idem") == ["I'd like to book an appointment"]  # one turn
    assert bot.state("idem").turn == 1
    bot.respond("idem", "Riverside", message_id="m-2")
    assert bot.state("idem").turn == 2
    with pytest.raises(InvalidMessage, match="m-1"):
        bot.respond("idem", "something else entirely", message_id="m-1")
    assert bot.state("idem").turn == 2
    without = bot.respond("idem", "savings")  # no id: every call is a turn
    assert without.route == "flow" and bot.state("idem").turn == 3


def test_a_kept_reply_keeps_its_handoff_and_citations(make_bot: Callable[..., Assistant]) -> None:
    bot = make_bot()
    first = bot.respond(
        "idem-h", "I want to speak to a person", message_id="x", customer_id="C-1001"
    )
    again = bot.respond(
        "idem-h", "I want to speak to a person", message_id="x", customer_id="C-1001"
    )
    assert first.handoff is not None and again.handoff == first.handoff
    rag = bot.respond("idem-r", "How do I dispute a card payment?", message_id="y")
    assert rag.citations
    assert bot.respond("idem-r", "How do I dispute a card payment?", message_id="y").citations == (
        rag.citations
    )
