"""Follow-up questions searched with what they refer to: the offline rule, the LLM rewrite
(local stub server), and live conversations on the Northwind knowledge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.llm import build_chat_model
from cxbot.prompts import PromptLibrary
from cxbot.rag.rewrite import QueryRewriter, is_follow_up, standalone_query
from cxbot.testing import StubLLMServer

SAVER = [("user", "Tell me about the Everyday Saver account"), ("bot", "It pays 3.1% AER.")]


@pytest.mark.parametrize(
    "message",
    [
        "does it have a withdrawal limit?",
        "what about the fee for that?",
        "and on Saturdays?",
        "how long does that take?",
        "their opening hours?",
        "fees?",
    ],
)
def test_messages_that_lean_on_the_conversation_are_follow_ups(message: str) -> None:
    assert is_follow_up(message)
    assert standalone_query(message, SAVER) == f"{SAVER[0][1]} {message}"


@pytest.mark.parametrize(
    "message",
    [
        "How do I change my PIN?",
        "Is there a fee for sending money abroad?",
        "What are the opening hours of the Old Town branch?",
    ],
)
def test_questions_that_stand_alone_are_searched_as_asked(message: str) -> None:
    assert not is_follow_up(message)
    assert standalone_query(message, SAVER) == message


def test_the_referent_is_the_customers_last_substantive_message() -> None:
    history = [
        ("user", "What is the overdraft fee?"),
        ("bot", "It is 39.9% EAR."),
        ("user", "ok thanks"),
        ("bot", "You're welcome."),
    ]
    assert standalone_query("is it charged daily?", history) == (
        "What is the overdraft fee? is it charged daily?"
    )
    assert standalone_query("is it charged daily?", []) == "is it charged daily?"


def test_the_llm_rewrites_follow_ups_and_the_rule_answers_when_it_fails() -> None:
    prompts = PromptLibrary(Path(__file__).resolve().parents[2] / "prompts")
    with StubLLMServer() as server:
        model = build_chat_model_for(server)
        rewriter = QueryRewriter(prompts, chat_model=model)
        server.script("Does the Everyday Saver account have a withdrawal limit?")
        assert rewriter.rewrite("does it have a withdrawal limit?", SAVER) == (
            "Does the Everyday Saver account have a withdrawal limit?"
        )
        sent = server.requests[-1].last_user
        assert "Customer: Tell me about the Everyday Saver account" in sent
        assert "does it have a withdrawal limit?" in sent
        before = len(server.requests)
        assert rewriter.rewrite("How do I change my PIN?", SAVER) == "How do I change my PIN?"
        assert len(server.requests) == before  # a standalone question costs no LLM call
        server.fail_next(500)
        assert rewriter.rewrite("does it have a withdrawal limit?", SAVER) == (
            standalone_query("does it have a withdrawal limit?", SAVER)
        )


def build_chat_model_for(server: StubLLMServer) -> object:
    from cxbot.config import LLMConfig

    config = LLMConfig(base_url=server.base_url, model="stub", max_retries=0)
    model = build_chat_model(config, {"CXBOT_LLM_API_KEY": "test"})
    assert model is not None
    return model


def test_a_follow_up_in_a_live_conversation_cites_what_it_refers_to(
    make_bot: Callable[..., Assistant],
) -> None:
    bot = make_bot()
    first = bot.respond("follow-up", "How do I report a stolen card?")
    assert first.route == "rag"
    follow = bot.respond("follow-up", "how long does it take for the new one to arrive?")
    assert follow.route == "rag"
    sources = [c.source for c in follow.citations]
    assert sources and sources[0].startswith("cards/"), sources


def test_a_standalone_question_with_a_pronoun_is_not_pulled_off_topic(
    make_bot: Callable[..., Assistant], embedder: SentenceTransformerEmbedder
) -> None:
    bot = make_bot()
    bot.respond("standalone", "What is the interest rate on the Everyday Saver?")
    reply = bot.respond("standalone", "How do I freeze my card if it goes missing?")
    assert reply.route == "rag"
    asked = bot.pipeline.retriever.run(
        embedder.embed_query("How do I freeze my card if it goes missing?"),
        "How do I freeze my card if it goes missing?",
    )
    assert reply.citations[0].source == asked[0].metadata["source"]
    assert reply.citations[0].source.startswith("cards/")
