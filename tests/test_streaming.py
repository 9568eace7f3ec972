"""Streamed turns (``Assistant.astream``): a real ChatOpenAI streaming from the stub server,
sentences released only once the output guardrails pass them, then one final reply."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cxbot.assistant import Assistant
from cxbot.config import LLMConfig
from cxbot.conversation.events import BotUttered, GuardrailTriggered
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import InvalidMessage
from cxbot.guardrails.base import GuardrailContext
from cxbot.llm import build_chat_model
from cxbot.prompts import PromptLibrary, PromptTask, ReplyKey
from cxbot.stream import FinalReply, StreamEvent, TextDelta
from cxbot.testing import FixedClock, StubLLMServer, StubRequest
from cxbot.types import Reply

NOW = datetime(2026, 11, 25, 10, 0)
LOST_CARD = "I lost my card, what should I do?"
SENTENCES = [
    "Report it in the app under Cards straight away [1].",
    "We send a replacement card within five working days [2].",
    "Your PIN stays the same [1].",
]


class Answers:
    """What the stub answers every chat request with (set by each test)."""

    def __init__(self) -> None:
        self.text = ""

    def __call__(self, request: StubRequest) -> str:
        return self.text


@pytest.fixture(scope="module")
def answers() -> Answers:
    return Answers()


@pytest.fixture(scope="module")
def stub(answers: Answers) -> Iterator[StubLLMServer]:
    with StubLLMServer(answers) as server:
        yield server


def llm_env(server: StubLLMServer) -> dict[str, str]:
    return {
        "CXBOT_LLM__BASE_URL": server.base_url,
        "CXBOT_LLM__MODEL": "stub-model",
        "CXBOT_LLM_API_KEY": "test",
        "CXBOT_LLM__MAX_RETRIES": "0",
    }


def _without_grounding(root: Path) -> None:
    """The scripted answers are about streaming, not their sources: no grounding unit."""
    config = root / "cxbot.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(", grounding, profanity]", ", profanity]"), encoding="utf-8")
    assert "grounding" not in config.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def llm_bot(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
    stub: StubLLMServer,
) -> Iterator[Assistant]:
    root = tmp_path_factory.mktemp("streaming") / "project"
    shutil.copytree(ingested_project, root)
    _without_grounding(root)
    bot = Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env=llm_env(stub))
    bot.warm_up()
    yield bot
    bot.close()


def collect(bot: Assistant, conversation_id: str, text: str, **kwargs: Any) -> list[StreamEvent]:
    async def run() -> list[StreamEvent]:
        return [event async for event in bot.astream(conversation_id, text, **kwargs)]

    return asyncio.run(run())


def split(events: list[StreamEvent]) -> tuple[list[str], FinalReply]:
    """The delta texts and the final event; checks the final event comes once, last."""
    finals = [e for e in events if isinstance(e, FinalReply)]
    assert len(finals) == 1 and events[-1] is finals[0]
    deltas = [e.text for e in events[:-1] if isinstance(e, TextDelta)]
    assert len(deltas) == len(events) - 1
    return deltas, finals[0]


def same_turn(streamed: Reply, responded: Reply) -> None:
    assert streamed.text == responded.text
    assert streamed.route == responded.route
    assert streamed.intent == responded.intent
    assert streamed.citations == responded.citations
    assert streamed.events == responded.events


def stored_reply(bot: Assistant, conversation_id: str) -> str:
    said = [e for e in bot.events(conversation_id) if isinstance(e, BotUttered)]
    assert len(said) == 1
    return said[0].text


# -- with a chat model -------------------------------------------------------------------


def test_answer_streams_sentence_by_sentence_and_ends_with_the_stored_reply(
    llm_bot: Assistant, stub: StubLLMServer, answers: Answers
) -> None:
    answers.text = " ".join(SENTENCES)
    before = len(stub.requests)

    deltas, final = split(collect(llm_bot, "stream-answer", LOST_CARD))

    (request,) = stub.requests[before:]
    assert request.stream  # the chat model's streaming API, not one completion
    assert deltas == [f"{s} " for s in SENTENCES[:-1]] + [SENTENCES[-1]]
    assert "".join(deltas) == final.reply.text
    assert not final.replace_shown
    assert final.reply.route == "rag" and final.reply.citations
    assert stored_reply(llm_bot, "stream-answer") == final.reply.text
    assert llm_bot.state("stream-answer").turn == 1

    responded = llm_bot.respond("stream-answer-twin", LOST_CARD)
    assert not stub.requests[-1].stream
    same_turn(final.reply, responded)


class GatedModel:
    """The real chat model, except that its stream pauses after the second sentence has
    begun until the test has received the first sentence (or 10 s have passed)."""

    def __init__(self, inner: Any, first_sentence: str) -> None:
        self.inner = inner
        self.first_sentence = first_sentence
        self.first_delta_seen = threading.Event()
        self.released_by_consumer: bool | None = None

    def stream(self, messages: Any) -> Iterator[Any]:
        text = ""
        for chunk in self.inner.stream(messages):
            yield chunk
            text += str(chunk.text)
            after = text.lstrip().removeprefix(self.first_sentence)
            if self.released_by_consumer is None and after != text.lstrip() and after.strip():
                self.released_by_consumer = self.first_delta_seen.wait(timeout=10)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_first_sentence_reaches_the_caller_while_the_model_is_still_writing(
    make_bot: Callable[..., Assistant], stub: StubLLMServer, answers: Answers, project: Path
) -> None:
    _without_grounding(project)
    answers.text = " ".join(SENTENCES)
    inner = build_chat_model(
        LLMConfig(base_url=stub.base_url, model="stub-model", max_retries=0), {}
    )
    gated = GatedModel(inner, SENTENCES[0])
    bot = make_bot(chat_model=gated)

    async def run() -> list[StreamEvent]:
        events = []
        async for event in bot.astream("stream-live", LOST_CARD):
            if isinstance(event, TextDelta):
                gated.first_delta_seen.set()
            events.append(event)
        return events

    deltas, final = split(asyncio.run(run()))

    assert gated.released_by_consumer is True
    assert deltas[0] == f"{SENTENCES[0]} "
    assert "".join(deltas) == final.reply.text == " ".join(SENTENCES)


def test_other_customers_email_is_blocked_before_it_is_streamed(
    llm_bot: Assistant, answers: Answers
) -> None:
    email = "tomasz.nowicki@example.com"
    assert email in llm_bot.deps.profiles.all_contacts()  # another customer's, known
    answers.text = f"{SENTENCES[0]} You can also write to {email} about it. {SENTENCES[2]}"

    deltas, final = split(collect(llm_bot, "stream-pii", LOST_CARD, customer_id="C-1001"))

    assert deltas == [f"{SENTENCES[0]} "]
    assert all("tomasz" not in d for d in deltas)
    assert final.replace_shown
    blocked = llm_bot.deps.prompts.reply(ReplyKey.BLOCKED_OUTPUT)
    assert final.reply.text == blocked and final.reply.route == "blocked"
    assert final.reply.citations == ()
    audits = [e for e in final.reply.events if isinstance(e, GuardrailTriggered)]
    assert [(a.stage, a.guardrail, a.action) for a in audits] == [("output", "pii_leak", "block")]
    assert stored_reply(llm_bot, "stream-pii") == blocked


def _system_prompt(bot: Assistant) -> str:
    return PromptLibrary(bot.root / "prompts").render(
        PromptTask.SYSTEM, company=bot.config.company, assistant_name=bot.config.assistant_name
    )


def test_system_prompt_in_the_first_sentence_is_never_streamed(
    llm_bot: Assistant, answers: Answers
) -> None:
    leaked = _system_prompt(llm_bot).splitlines()[1]
    assert len(leaked.split()) >= 8
    answers.text = f"{leaked} {SENTENCES[1]}"

    deltas, final = split(collect(llm_bot, "stream-leak-first", LOST_CARD))

    blocked = llm_bot.deps.prompts.reply(ReplyKey.BLOCKED_OUTPUT)
    # nothing of the answer was shown, so the blocked reply is itself the stream
    assert deltas == [blocked]
    assert not final.replace_shown
    assert final.reply.text == blocked and final.reply.route == "blocked"


def test_prompt_leak_across_two_sentences_is_caught_on_the_answer_so_far(
    llm_bot: Assistant, answers: Answers, embedder: SentenceTransformerEmbedder
) -> None:
    opening, rules = _system_prompt(llm_bot).splitlines()[:2]
    first = "I am " + " ".join(opening.split()[-6:])  # "I am the customer assistant of …."
    second = " ".join(rules.split()[:6]).rstrip(",.") + "."  # "Answer only from the …."
    guard = next(g for g in llm_bot.pipeline.output_guardrails if g.name == "prompt_leak")
    context = GuardrailContext(now=NOW, customer_id=None, embed=embedder.embed_query)
    # precondition: each sentence alone passes, the two together repeat the prompt
    assert guard.check(first, context).action == "allow"
    assert guard.check(second, context).action == "allow"
    assert guard.check(f"{first} {second}", context).action == "block"
    answers.text = f"{first} {second} {SENTENCES[2]}"

    deltas, final = split(collect(llm_bot, "stream-leak-span", LOST_CARD))

    assert deltas == [f"{first} "]
    assert final.replace_shown
    assert final.reply.route == "blocked"


def test_refusal_gives_the_dont_know_reply_and_never_streams_the_refusal(
    llm_bot: Assistant, stub: StubLLMServer, answers: Answers
) -> None:
    answers.text = "I don't know."
    before = len(stub.requests)

    deltas, final = split(
        collect(llm_bot, "stream-refusal", "Can I choose a different colour for my debit card?")
    )

    (request,) = stub.requests[before:]
    assert request.stream
    dont_know = llm_bot.deps.prompts.reply(ReplyKey.DONT_KNOW)
    assert deltas == [dont_know]
    assert not any(d.strip().lower().startswith("i don't know") for d in deltas)
    assert final.reply.text == dont_know and final.reply.route == "rag"
    assert final.reply.citations == ()
    said = [e for e in final.reply.events if isinstance(e, BotUttered)]
    assert said[0].failed


def test_reply_without_the_llm_route_is_one_delta(llm_bot: Assistant, stub: StubLLMServer) -> None:
    before = len(stub.requests)

    deltas, final = split(collect(llm_bot, "stream-flow", "I'd like to book an appointment"))

    assert len(stub.requests) == before
    assert final.reply.route == "flow"
    assert deltas == [final.reply.text] and not final.replace_shown


def test_caller_leaving_early_does_not_cancel_the_turn(
    llm_bot: Assistant, answers: Answers
) -> None:
    answers.text = " ".join(SENTENCES)

    async def first_delta_only() -> str:
        async with contextlib.aclosing(llm_bot.astream("stream-leave", LOST_CARD)) as events:
            async for event in events:
                assert isinstance(event, TextDelta)
                return event.text
        raise AssertionError("no event")

    first = asyncio.run(first_delta_only())  # returns once the turn's thread has finished

    assert first == f"{SENTENCES[0]} "
    assert stored_reply(llm_bot, "stream-leave") == " ".join(SENTENCES)


# -- offline -----------------------------------------------------------------------------


def test_offline_answer_is_one_delta_equal_to_the_reply(bot: Assistant) -> None:
    deltas, final = split(collect(bot, "offline-stream", LOST_CARD))

    assert final.reply.route == "rag" and final.reply.citations
    assert deltas == [final.reply.text] and not final.replace_shown
    assert stored_reply(bot, "offline-stream") == final.reply.text
    same_turn(final.reply, bot.respond("offline-twin", LOST_CARD))


def test_unusable_message_raises_before_any_event_and_stores_nothing(bot: Assistant) -> None:
    events: list[StreamEvent] = []

    async def run() -> None:
        async for event in bot.astream("offline-bad", "   "):
            events.append(event)

    with pytest.raises(InvalidMessage):
        asyncio.run(run())
    assert events == []
    assert bot.events("offline-bad") == []
