"""Intent classification on held-out phrasings, and out-of-scope detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import DEFAULT_MODEL, SentenceTransformerEmbedder
from cxbot.nlu.intent import IntentClassifier, IntentScorer, TrainedIntentClassifier

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


def _examples() -> dict[str, tuple[str, ...]]:
    from cxbot.flows.actions import builtin_actions
    from cxbot.flows.spec import load_flows, load_intents

    root = Path(__file__).resolve().parents[2]
    flows = load_flows(root / "flows", actions=builtin_actions())
    examples = {i.name: i.examples for i in load_intents(root / "flows/intents.yaml").intents}
    examples.update({n: f.examples for n, f in flows.items()})
    return examples


@pytest.fixture(scope="module", params=["trained", "examples"])
def classifier(
    request: pytest.FixtureRequest, embedder: SentenceTransformerEmbedder, ingested_project: Path
) -> IntentScorer:
    model: IntentScorer
    if request.param == "trained":  # the model the session's project copy trained and saved
        model = TrainedIntentClassifier(
            _examples(),
            embedder,
            ingested_project / ".cxbot" / "nlu",
            encoder=DEFAULT_MODEL,
            min_similarity=0.4,
        )
    else:
        model = IntentClassifier(_examples(), embedder, threshold=0.45)
    model.warm_up()
    return model


MIN_ACCURACY = {"trained": 0.9, "examples": 0.8}
"""Nearest examples confuse some cancel/reschedule phrasings; the trained model fewer."""


def test_held_out_phrasings_accuracy(
    classifier: IntentScorer, embedder: SentenceTransformerEmbedder
) -> None:
    wrong = []
    for text, intent in HELD_OUT:
        predicted, confidence, _ = classifier.classify(embedder.query_features(text))
        if predicted != intent:
            wrong.append((text, intent, predicted))
        else:
            assert classifier.threshold <= confidence <= 1.0
    accuracy = 1 - len(wrong) / len(HELD_OUT)
    kind = "trained" if isinstance(classifier, TrainedIntentClassifier) else "examples"
    assert accuracy >= MIN_ACCURACY[kind], wrong


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_out_of_scope_has_no_intent(
    classifier: IntentScorer, embedder: SentenceTransformerEmbedder, text: str
) -> None:
    """Out of scope, or the knowledge-question intent: either way the turn goes to the
    knowledge base (which says it does not know), never into a flow or small talk."""
    predicted, _, _ = classifier.classify(embedder.query_features(text))
    assert predicted in (None, "question")


def test_turn_embeds_the_message_once(bot: Assistant) -> None:
    calls: list[str] = []
    embedder = bot.deps.embedder
    real = embedder.embed_query

    def counting(text: str):  # type: ignore[no-untyped-def]
        calls.append(text)
        return real(text)

    bot.warm_up()
    encoded: list[str] = []  # every text the encoder itself runs on
    real_encode, real_forward = embedder._encode, embedder._forward  # type: ignore[attr-defined]

    def encode(texts, *args):  # type: ignore[no-untyped-def]
        encoded.extend(texts)
        return real_encode(texts, *args)

    def forward(texts, *args):  # type: ignore[no-untyped-def]
        encoded.extend(texts)
        return real_forward(texts, *args)

    embedder.embed_query = counting  # type: ignore[method-assign]
    embedder._encode, embedder._forward = encode, forward  # type: ignore[attr-defined]
    message = "How long does a replacement card take to arrive?"
    embedder._cache.pop(message, None)  # type: ignore[attr-defined]  # earlier tests' cache
    try:
        reply = bot.respond("once", message)
    finally:
        del embedder.embed_query  # type: ignore[method-assign]
        del embedder._encode, embedder._forward  # type: ignore[attr-defined]
    assert reply.route == "rag" and reply.citations
    assert calls == [message]
    assert encoded.count(message) == 1, "one encoder pass: guardrails, both intent heads, RAG"
    assert set(reply.trace) >= {"guardrails", "embedding", "nlu", "retrieval", "generation"}
