"""Intent classification on held-out phrasings, and out-of-scope detection."""

from __future__ import annotations

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.nlu.intent import IntentClassifier

HELD_OUT = [
    ("could I get an appointment with someone at the bank", "book_appointment"),
    ("I want to sit down with a savings adviser", "book_appointment"),
    ("please call off my appointment on Friday", "cancel_appointment"),
    ("I won't be able to come to my appointment, scrap it", "cancel_appointment"),
    ("can we push my branch meeting to next week", "reschedule_appointment"),
    ("move my appointment to a different time", "reschedule_appointment"),
    ("let me speak with an actual person", "human_agent"),
    ("I need a human", "human_agent"),
    ("good afternoon", "greet"),
    ("I'd like to see a mortgage advisor at Old Town", "book_appointment"),
    ("cancel my appointment please", "cancel_appointment"),
    ("is it possible to change the day of my appointment", "reschedule_appointment"),
    ("transfer me to customer services staff", "human_agent"),
    ("many thanks", "thanks"),
]
OUT_OF_SCOPE = [
    "what is the capital of Mongolia",
    "write me a poem about cheese",
    "how tall is mount everest",
]


@pytest.fixture(scope="module")
def classifier(embedder: SentenceTransformerEmbedder) -> IntentClassifier:
    from pathlib import Path

    from cxbot.flows.actions import builtin_actions
    from cxbot.flows.spec import load_flows, load_intents

    root = Path(__file__).resolve().parents[2]
    flows = load_flows(root / "flows", actions=builtin_actions())
    examples = {i.name: i.examples for i in load_intents(root / "flows/intents.yaml").intents}
    examples.update({n: f.examples for n, f in flows.items()})
    model = IntentClassifier(examples, embedder, threshold=0.45)
    model.warm_up()
    return model


MIN_ACCURACY = 0.8
"""Nearest-examples MiniLM confuses some cancel/reschedule phrasings; the trained head
planned for NLU is expected to lift this."""


def test_held_out_phrasings_accuracy(
    classifier: IntentClassifier, embedder: SentenceTransformerEmbedder
) -> None:
    wrong = []
    for text, intent in HELD_OUT:
        predicted, confidence, _ = classifier.classify(embedder.embed_query(text))
        if predicted != intent:
            wrong.append((text, intent, predicted))
        else:
            assert 0.45 <= confidence <= 1.0
    accuracy = 1 - len(wrong) / len(HELD_OUT)
    assert accuracy >= MIN_ACCURACY, wrong


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_out_of_scope_has_no_intent(
    classifier: IntentClassifier, embedder: SentenceTransformerEmbedder, text: str
) -> None:
    predicted, confidence, _ = classifier.classify(embedder.embed_query(text))
    assert predicted is None
    assert confidence < 0.45


def test_turn_embeds_the_message_once(bot: Assistant) -> None:
    calls: list[str] = []
    embedder = bot.deps.embedder
    real = embedder.embed_query

    def counting(text: str):  # type: ignore[no-untyped-def]
        calls.append(text)
        return real(text)

    bot.warm_up()
    embedder.embed_query = counting  # type: ignore[method-assign]
    try:
        reply = bot.respond("once", "How long does a replacement card take to arrive?")
    finally:
        del embedder.embed_query  # type: ignore[method-assign]
    assert reply.route == "rag" and reply.citations
    assert calls == ["How long does a replacement card take to arrive?"]
    assert set(reply.trace) >= {"guardrails", "embedding", "nlu", "retrieval", "generation"}
