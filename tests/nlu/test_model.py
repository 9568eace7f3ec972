"""The trained intent model: one encoder pass feeds both heads; saved, reloaded, reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import ConfigError
from cxbot.nlu.intent import TrainedIntentClassifier
from cxbot.nlu.model import IntentModel, TrainingSettings, fit_temperature
from cxbot.nlu.training import split_holdout, train_intent_model

EXAMPLES = {
    "lost_card": (
        "I lost my card",
        "my card is missing",
        "someone stole my debit card",
        "I can't find my bank card anywhere",
        "my card has disappeared",
        "card lost on holiday",
    ),
    "balance": (
        "what is my balance",
        "how much money do I have",
        "show me my account balance",
        "how much is left in my account",
        "tell me my current balance",
        "what's in my current account",
    ),
    "open_account": (
        "I want to open a new account",
        "how do I open a savings account",
        "can I start a joint account",
        "open an account for my son",
        "sign me up for a current account",
        "I'd like a new bank account",
    ),
}


def _texts_labels() -> tuple[list[str], list[str]]:
    pairs = [(t, n) for n, texts in EXAMPLES.items() for t in texts]
    return [t for t, _ in pairs], [n for _, n in pairs]


def test_features_vector_is_the_sentence_embedding(embedder: SentenceTransformerEmbedder) -> None:
    texts = ["I lost my card", "what is my balance today?"]
    features = embedder.features(texts, 4)
    np.testing.assert_allclose(
        np.stack([f.vector for f in features]), embedder.embed_documents(texts), atol=1e-5
    )
    assert [f.states.shape[1] for f in features] == [384, 384]
    assert features[0].states.shape[0] < features[1].states.shape[0]  # real tokens only


def test_model_predicts_saves_and_reloads(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    texts, labels = _texts_labels()
    model, report = train_intent_model(texts, labels, embedder, encoder="minilm")
    assert report.tuned_layers == 2 and report.held_out == 3
    probe = embedder.features(["my card got stolen", "open a business account"], 4)
    probabilities = model.probabilities(probe)
    assert [model.labels[i] for i in probabilities.argmax(axis=1)] == ["lost_card", "open_account"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    model.save(tmp_path / "nlu")
    again = IntentModel.load(tmp_path / "nlu", embedder.encoder_layers()[4:])
    np.testing.assert_allclose(again.probabilities(probe), probabilities, atol=1e-5)
    assert (again.threshold, again.temperature) == (model.threshold, model.temperature)
    with pytest.raises(ConfigError, match="tuned head needs the encoder"):
        IntentModel.load(tmp_path / "nlu")


def test_linear_head_alone_needs_no_token_states(embedder: SentenceTransformerEmbedder) -> None:
    texts, labels = _texts_labels()
    model, report = train_intent_model(
        texts, labels, embedder, settings=TrainingSettings(tune_layers=0)
    )
    assert report.tuned_layers == 0 and model.tuned is None
    from cxbot.embeddings import Features

    scores = model.probabilities([Features(embedder.embed_query("how much cash do I have"))])
    assert model.labels[int(scores.argmax())] == "balance"


def test_classifier_reuses_the_saved_model_until_examples_change(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    first = TrainedIntentClassifier(EXAMPLES, embedder, tmp_path / "nlu")
    first.warm_up()
    assert first.report is not None  # trained
    second = TrainedIntentClassifier(EXAMPLES, embedder, tmp_path / "nlu")
    second.warm_up()
    assert second.report is None  # loaded
    message = embedder.query_features("I've lost my card")
    assert first.classify(message)[:2] == second.classify(message)[:2]
    changed = {**EXAMPLES, "balance": (*EXAMPLES["balance"], "balance please")}
    third = TrainedIntentClassifier(changed, embedder, tmp_path / "nlu")
    third.warm_up()
    assert third.report is not None  # retrained on the new examples


def test_training_rejects_unusable_data(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(ConfigError, match="at least two intents"):
        train_intent_model(["a", "b"], ["x", "x"], embedder)
    with pytest.raises(ConfigError, match="same, non-zero number"):
        train_intent_model(["a"], ["x", "y"], embedder)


def test_holdout_keeps_two_of_every_intent() -> None:
    import random

    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 2
    kept, held = split_holdout(labels, 0.1, random.Random(0))
    assert sorted(kept + held) == list(range(15))
    assert [labels[i] for i in held].count("a") == 1
    assert [labels[i] for i in held].count("b") == 1
    assert "c" not in [labels[i] for i in held]


def test_temperature_softens_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, size=200)
    logits = rng.normal(size=(200, 3)) * 10  # confident and mostly wrong
    logits[np.arange(100), targets[:100]] += 5
    assert fit_temperature(logits.astype(np.float32), targets.tolist()) > 1.0


def test_oos_threshold_extrapolates_a_tail_few_examples_cannot_show() -> None:
    from cxbot.nlu.training import oos_threshold

    rng = np.random.default_rng(0)
    population = rng.beta(8, 1, 200_000)
    true = float(np.quantile(population, 0.002))
    small = oos_threshold(rng.beta(8, 1, 77), 0.998)
    large = oos_threshold(population[:20_000], 0.998)
    assert small < float(np.quantile(population, 0.02))  # below what 77 samples can show
    assert abs(large - true) < 0.02  # enough examples: the empirical quantile
    assert oos_threshold([0.9, 0.9, 0.9], 0.99) == pytest.approx(0.9)
