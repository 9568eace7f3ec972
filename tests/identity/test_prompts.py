"""No account field reaches an LLM prompt before the customer is verified: every request
the turns send to an OpenAI-compatible stub server is recorded and read."""

from __future__ import annotations

import json
from collections.abc import Callable

from cxbot.assistant import Assistant
from cxbot.testing import StubLLMServer, StubRequest

# C-1001's account fields in knowledge/northwind/customers.json, the verification answers and
# the name (card status, branch and package are words public articles use too)
ACCOUNT_VALUES = (
    "8423.17",
    "48250",
    "214380.55",
    "642.18",
    "9958",
    "5530",
    "1959-01-03",
    "KB1 4QR",
    "eleanor",
    "Whitcombe",
)


def _answer(request: StubRequest) -> str:
    if "JSON" in request.last_user and "schema" in request.last_user:
        return json.dumps(
            {"reason": "Identity checks failed.", "tried": [], "suggested_next_step": "Verify."}
        )
    return "Here is what our articles say [1]."


def _leaks(requests: list[StubRequest]) -> list[str]:
    prompts = "\n".join(m["content"] for r in requests for m in r.messages)
    return [v for v in ACCOUNT_VALUES if v.lower() in prompts.lower()]


def _bot(make_bot: Callable[..., Assistant], llm: StubLLMServer) -> Assistant:
    return make_bot(
        env={
            "CXBOT_LLM__BASE_URL": llm.base_url,
            "CXBOT_LLM__MODEL": "stub-model",
            "CXBOT_LLM_API_KEY": "test",
            "CXBOT_LLM__MAX_RETRIES": "0",
        }
    )


def test_no_account_field_reaches_a_prompt_before_verification(
    make_bot: Callable[..., Assistant],
) -> None:
    with StubLLMServer(_answer) as llm:
        bot = _bot(make_bot, llm)

        def claim(conversation: str, text: str) -> str:
            reply = bot.respond(conversation, text, customer_id="C-1001", authenticated=False)
            return reply.text

        # account questions, a public one, wrong answers until the lock and the handoff
        claim("p1", "What is my balance?")
        claim("p2", "How do I dispute a card payment?")
        claim("p2", "And is my debit card frozen at the moment?")
        claim("p3", "How much money do I have in my accounts?")
        for _ in range(3):
            claim("p3", "14/02/1980")
            claim("p3", "KB2 3LC")
        assert bot.state("p3").handed_off
        before = list(llm.requests)
        assert before  # the public question and the summary went to the model
        assert _leaks(before) == []

        # once the customer is who they say, the same question may use the profile
        bot.respond("p4", "How much money do I have in my accounts?", customer_id="C-1002")
        after = llm.requests[len(before) :]
        assert "450" in "\n".join(m["content"] for r in after for m in r.messages)


def test_no_account_field_reaches_a_prompt_in_an_anonymous_verification(
    make_bot: Callable[..., Assistant],
) -> None:
    with StubLLMServer(_answer) as llm:
        bot = _bot(make_bot, llm)
        # no customer id: a public question, then an account question whose checks fail
        # (a known number with a wrong date of birth, an unknown number) until the handoff
        bot.respond("q1", "How do I dispute a card payment?")
        bot.respond("q2", "How much money do I have in my accounts?")
        for number, dob in (("C-1001", "14/02/1980"), ("C-9999", "3 January 1959")) * 2:
            if bot.state("q2").handed_off:
                break
            bot.respond("q2", number)
            bot.respond("q2", dob)
            bot.respond("q2", "KB1 4QR")
        assert bot.state("q2").handed_off
        before = list(llm.requests)
        assert before  # the public question and the summary went to the model
        assert _leaks(before) == []

        # verified by customer number, date of birth and postcode: the profile may be used
        for text in ("How much money do I have in my accounts?", "C-1002"):
            bot.respond("q3", text)
        profile = bot.deps.profiles.get("C-1002")
        assert profile is not None
        bot.respond("q3", str(profile.fields["date_of_birth"]))
        reply = bot.respond("q3", str(profile.fields["postcode"]))
        assert reply.text.startswith("Thank you, that's you verified.")
        after = llm.requests[len(before) :]
        assert "450" in "\n".join(m["content"] for r in after for m in r.messages)
