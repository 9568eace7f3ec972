"""Training the intent model from example utterances (``cxbot train nlu``, ``cxbot eval nlu``).

1. One encoder pass over the examples gives sentence vectors and the token states below the
   layers to be tuned.
2. A stratified share of the examples is held back; both heads are fitted on the rest, and
   the held-back examples give the calibration temperature and the out-of-scope threshold
   (the calibrated confidence that keeps ``keep_in_scope`` of them).
3. Both heads are fitted again on all examples; the temperature and threshold carry over.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from cxbot.embeddings import Features, encode_many
from cxbot.errors import ConfigError
from cxbot.nlu.model import (
    IntentModel,
    TrainingSettings,
    fit_linear,
    fit_temperature,
    fit_tuned,
)

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder

__all__ = [
    "TrainingReport",
    "fingerprint",
    "oos_threshold",
    "split_holdout",
    "train_intent_model",
    "tuned_layers",
]

RECIPE = 3
"""Bumped when training changes, so saved models of an older recipe are retrained."""
KEEP_IN_SCOPE = 0.998
"""Share of held-back in-scope examples the out-of-scope threshold keeps."""


@dataclass(frozen=True, slots=True)
class TrainingReport:
    examples: int
    intents: int
    held_out: int
    held_out_accuracy: float
    threshold: float
    temperature: float
    encode_seconds: float
    train_seconds: float
    tuned_layers: int


def fingerprint(
    examples: Sequence[tuple[str, str]], settings: TrainingSettings, encoder: str
) -> str:
    """Identifies a training run: same examples, settings and encoder → same model."""
    payload = json.dumps(
        {
            "examples": sorted(examples),
            "settings": asdict(settings),
            "encoder": encoder,
            "recipe": RECIPE,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def split_holdout(
    labels: Sequence[str], share: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """(kept, held) indices: ``share`` of each intent held back (at least one of an intent
    with three or more examples), at least two kept."""
    order = list(range(len(labels)))
    rng.shuffle(order)
    per_label = Counter(labels)
    taken: Counter[str] = Counter()
    held: list[int] = []
    for index in order:
        label = labels[index]
        count = per_label[label]
        quota = min(max(1, round(count * share)), count - 2) if count >= 3 else 0
        if taken[label] < quota:
            held.append(index)
            taken[label] += 1
    held_set = set(held)
    return [i for i in order if i not in held_set], held


def oos_threshold(confidences: Any, keep: float) -> float:
    """The confidence below which ``1 - keep`` of in-scope messages fall, from held-back
    confidences: their empirical quantile or, when they are too few to show that tail (a few
    dozen cannot show 0.2%), the lower of it and a normal fit of their logits."""
    from statistics import NormalDist

    import numpy as np

    values = np.clip(np.asarray(confidences, dtype=np.float64), 1e-4, 1 - 1e-4)
    empirical = float(np.quantile(values, 1 - keep))
    logits = np.log(values / (1 - values))
    if len(logits) * (1 - keep) >= 1 or len(logits) < 2 or float(logits.std()) == 0.0:
        return empirical
    z = NormalDist().inv_cdf(1 - keep)
    fitted = float(1 / (1 + np.exp(-(logits.mean() + z * logits.std()))))
    return min(empirical, fitted)


def tuned_layers(embedder: Embedder, settings: TrainingSettings) -> tuple[int | None, list[Any]]:
    """(index of the first tuned layer, the layers to tune) — (None, []) without tuning."""
    if settings.tune_layers <= 0 or not hasattr(embedder, "encoder_layers"):
        return None, []
    layers: list[Any] = embedder.encoder_layers()
    count = min(settings.tune_layers, len(layers))
    return len(layers) - count, layers[len(layers) - count :]


def train_intent_model(
    texts: Sequence[str],
    labels: Sequence[str],
    embedder: Embedder,
    *,
    settings: TrainingSettings | None = None,
    holdout: float = 0.1,
    keep_in_scope: float = KEEP_IN_SCOPE,
    encoder: str = "",
    features: Sequence[Features] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[IntentModel, TrainingReport]:
    """Train, calibrate and return the intent model (see the module docstring)."""
    import numpy as np

    settings = settings or TrainingSettings()
    if len(texts) != len(labels) or not texts:
        raise ConfigError("intent training needs the same, non-zero number of texts and labels")
    names = sorted(set(labels))
    if len(names) < 2:
        raise ConfigError("intent training needs at least two intents")
    index = {name: i for i, name in enumerate(names)}
    targets = [index[label] for label in labels]
    first, layers = tuned_layers(embedder, settings)
    say = progress or (lambda _: None)

    started = time.perf_counter()
    if features is None:
        say(f"encoding {len(texts)} examples")
        features = encode_many(embedder, texts, first)
    encode_seconds = time.perf_counter() - started
    vectors = np.stack([f.vector for f in features]).astype(np.float32)
    states = [f.states for f in features]

    def fit(rows: Sequence[int]) -> IntentModel:
        linear = fit_linear(
            vectors[rows], [targets[i] for i in rows], len(names), settings.inverse_l2
        )
        tuned = None
        if layers:
            tuned = fit_tuned(
                layers,
                [states[i] for i in rows],
                vectors[rows],
                [targets[i] for i in rows],
                len(names),
                settings,
            )
        return IntentModel(
            names, linear, tuned, first_tuned_layer=first, encoder=encoder, settings=settings
        )

    begin = time.perf_counter()
    kept, held = split_holdout(labels, holdout, random.Random(settings.seed))
    temperature, threshold, held_accuracy = 1.0, 0.0, 0.0
    if held:
        say(f"fitting on {len(kept)} examples, calibrating on {len(held)} held back")
        probe = fit(kept)
        logits = probe.logits([features[i] for i in held])
        gold = [targets[i] for i in held]
        temperature = fit_temperature(logits, gold)
        probe.temperature = temperature
        probabilities = probe.probabilities([features[i] for i in held])
        held_accuracy = float((probabilities.argmax(axis=1) == np.asarray(gold)).mean())
        threshold = oos_threshold(probabilities.max(axis=1), keep_in_scope)
    say(f"fitting on all {len(texts)} examples")
    model = fit(list(range(len(texts))))
    model.temperature, model.threshold = temperature, threshold
    model.fingerprint = fingerprint(list(zip(texts, labels, strict=True)), settings, encoder)
    report = TrainingReport(
        examples=len(texts),
        intents=len(names),
        held_out=len(held),
        held_out_accuracy=round(held_accuracy, 4),
        threshold=round(threshold, 4),
        temperature=round(temperature, 4),
        encode_seconds=round(encode_seconds, 2),
        train_seconds=round(time.perf_counter() - begin, 2),
        tuned_layers=len(layers),
    )
    return model, report
