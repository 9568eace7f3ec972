"""Intent classifiers with an out-of-scope threshold; both read the turn's one encoding.

* :class:`TrainedIntentClassifier` (default): the trained model of :mod:`cxbot.nlu.model`;
  confidence is its calibrated probability.
* :class:`IntentClassifier`: no training — each intent is scored by the mean cosine
  similarity of the message to its ``k`` nearest example utterances.

Below the threshold the message is out of scope (``intent=None``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cxbot.types import IntentScore

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder, Features, Matrix, Vector
    from cxbot.nlu.model import IntentModel, TrainingSettings
    from cxbot.nlu.training import TrainingReport

__all__ = ["IntentClassifier", "IntentScorer", "TrainedIntentClassifier"]


class IntentScorer(Protocol):
    """What the NLU stage needs of a classifier."""

    examples: dict[str, tuple[str, ...]]

    @property
    def intents(self) -> list[str]: ...

    @property
    def threshold(self) -> float: ...

    def warm_up(self) -> None: ...

    def classify(self, features: Features) -> tuple[str | None, float, tuple[IntentScore, ...]]: ...


class IntentClassifier:
    """Nearest-examples intent classifier over MiniLM vectors."""

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        embedder: Embedder,
        *,
        threshold: float = 0.5,
        neighbours: int = 3,
    ) -> None:
        self.examples = {name: tuple(texts) for name, texts in examples.items()}
        self.embedder = embedder
        self.threshold = threshold
        self.neighbours = neighbours
        self._labels: list[str] = []
        self._matrix: Any = None

    @property
    def intents(self) -> list[str]:
        return sorted(self.examples)

    def warm_up(self) -> None:
        if self._matrix is not None:
            return
        texts: list[str] = []
        labels: list[str] = []
        for name, utterances in sorted(self.examples.items()):
            texts.extend(utterances)
            labels.extend([name] * len(utterances))
        matrix = self.embedder.embed_documents(texts)
        self._labels, self._matrix = labels, matrix

    @classmethod
    def from_vectors(
        cls,
        labels: Sequence[str],
        matrix: Matrix,
        embedder: Embedder,
        *,
        threshold: float = 0.5,
        neighbours: int = 3,
    ) -> IntentClassifier:
        """A classifier over example vectors already computed (e.g. a whole training set)."""
        examples: dict[str, list[str]] = {}
        for label in labels:
            examples.setdefault(label, [])
        model = cls(examples, embedder, threshold=threshold, neighbours=neighbours)
        model._labels, model._matrix = list(labels), matrix
        return model

    def score_matrix(self, vectors: Matrix) -> tuple[list[str], Matrix]:
        """Scores of many messages at once: (intent names, messages-by-intents matrix)."""
        import numpy as np

        self.warm_up()
        sims = np.atleast_2d(vectors) @ self._matrix.T
        labels = np.asarray(self._labels)
        names = sorted(self.examples)
        columns = []
        for name in names:
            own = sims[:, labels == name]
            k = min(self.neighbours, own.shape[1])
            top = np.partition(own, own.shape[1] - k, axis=1)[:, own.shape[1] - k :]
            columns.append(top.mean(axis=1))
        return names, np.stack(columns, axis=1).astype(np.float32)

    def rank(self, vector: Vector) -> tuple[IntentScore, ...]:
        names, scores = self.score_matrix(vector)
        ranking = (IntentScore(n, float(s)) for n, s in zip(names, scores[0], strict=True))
        return tuple(sorted(ranking, key=lambda s: s.score, reverse=True))

    def classify(self, features: Features) -> tuple[str | None, float, tuple[IntentScore, ...]]:
        ranking = self.rank(features.vector)
        best = ranking[0] if ranking else IntentScore("", 0.0)
        intent = best.name if best.score >= self.threshold else None
        return intent, best.score, ranking


class TrainedIntentClassifier:
    """The trained :class:`~cxbot.nlu.model.IntentModel` behind the NLU stage.

    On ``warm_up`` the model saved in ``model_dir`` is loaded when it was trained on the
    same examples, settings and encoder (its fingerprint); otherwise it is trained and saved
    (``cxbot train nlu`` does this ahead of time). The embedder is told to keep the token
    states the tuned head reads, so the turn's one encoder pass feeds both heads.
    """

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        embedder: Embedder,
        model_dir: Path,
        *,
        threshold: float | None = None,
        settings: TrainingSettings | None = None,
        encoder: str = "",
        min_similarity: float = 0.0,
        neighbours: int = 3,
    ) -> None:
        from cxbot.nlu.model import TrainingSettings

        self.examples = {name: tuple(texts) for name, texts in examples.items()}
        self.embedder = embedder
        self.model_dir = model_dir
        settings = settings or TrainingSettings()
        if not hasattr(embedder, "encoder_layers"):  # no token states: the linear head alone
            settings = replace(settings, tune_layers=0)
        self.settings = settings
        self.encoder = encoder
        self._threshold = threshold
        self.min_similarity = min_similarity
        self.neighbours = neighbours
        self._example_labels: Any = None
        self._example_vectors: Any = None
        self._model: IntentModel | None = None
        self._lock = threading.Lock()
        self.report: TrainingReport | None = None
        """How the model was trained, when this process trained it."""

    @property
    def intents(self) -> list[str]:
        return sorted(self.examples)

    @property
    def threshold(self) -> float:
        if self._threshold is not None:
            return self._threshold
        return self.model.threshold

    @property
    def model(self) -> IntentModel:
        self.warm_up()
        assert self._model is not None
        return self._model

    def _pairs(self) -> list[tuple[str, str]]:
        return [(text, name) for name, texts in sorted(self.examples.items()) for text in texts]

    def fingerprint(self) -> str:
        from cxbot.nlu.training import fingerprint

        return fingerprint(self._pairs(), self.settings, self.encoder)

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is None:
                self._model, vectors = self._load_or_train()
                if self.min_similarity > 0:
                    self._remember_examples(vectors)
                keep = self._model.first_tuned_layer
                if keep is not None and hasattr(self.embedder, "keep_layer"):
                    self.embedder.keep_layer = keep

    def _remember_examples(self, vectors: Matrix | None) -> None:
        """Example vectors for the similarity check (those training encoded, if it ran)."""
        import numpy as np

        pairs = self._pairs()
        self._example_labels = np.asarray([n for _, n in pairs])
        self._example_vectors = (
            vectors if vectors is not None else self.embedder.embed_documents([t for t, _ in pairs])
        )

    def train(self, progress: Callable[[str], None] | None = None) -> TrainingReport:
        """Train on the examples now and save the model (``cxbot train nlu``)."""
        model, report, vectors = self._train(progress)
        with self._lock:
            self._model, self.report = model, report
            if self.min_similarity > 0:
                self._remember_examples(vectors)
        return report

    def _train(
        self, progress: Callable[[str], None] | None = None
    ) -> tuple[IntentModel, TrainingReport, Matrix]:
        """Encode the examples once, train, save; returns the examples' vectors too."""
        import numpy as np

        from cxbot.embeddings import encode_many
        from cxbot.nlu.training import train_intent_model, tuned_layers

        pairs = self._pairs()
        texts = [t for t, _ in pairs]
        features = encode_many(self.embedder, texts, tuned_layers(self.embedder, self.settings)[0])
        model, report = train_intent_model(
            texts,
            [n for _, n in pairs],
            self.embedder,
            settings=self.settings,
            encoder=self.encoder,
            features=features,
            progress=progress,
        )
        model.save(self.model_dir)
        return model, report, np.stack([f.vector for f in features])

    def _load_or_train(self) -> tuple[IntentModel, Matrix | None]:
        from cxbot.nlu.model import IntentModel

        meta = IntentModel.saved_meta(self.model_dir)
        if meta.get("fingerprint") == self.fingerprint():
            first = meta.get("first_tuned_layer")
            layers = None
            if isinstance(first, int) and hasattr(self.embedder, "encoder_layers"):
                layers = self.embedder.encoder_layers()[first:]
            return IntentModel.load(self.model_dir, layers), None
        model, self.report, vectors = self._train()
        return model, vectors

    def rank(self, features: Features) -> tuple[IntentScore, ...]:
        model = self.model
        scores = model.probabilities([features])[0]
        ranking = (IntentScore(n, float(s)) for n, s in zip(model.labels, scores, strict=True))
        return tuple(sorted(ranking, key=lambda s: s.score, reverse=True))

    def classify(self, features: Features) -> tuple[str | None, float, tuple[IntentScore, ...]]:
        ranking = self.rank(features)
        best = ranking[0] if ranking else IntentScore("", 0.0)
        intent = best.name if best.score >= self.threshold else None
        if intent is not None and self._near_example(features, intent) < self.min_similarity:
            intent = None
        return intent, best.score, ranking

    def _near_example(self, features: Features, intent: str) -> float:
        """Mean cosine similarity of the message to the ``neighbours`` closest examples of
        ``intent``: with few examples a softmax is confident far from all of them, so a
        prediction also needs examples nearby (``min_similarity``)."""
        if self._example_vectors is None:
            return 1.0
        import numpy as np

        own = self._example_vectors[self._example_labels == intent] @ features.vector
        if not len(own):
            return 0.0
        k = min(self.neighbours, len(own))
        return float(np.sort(own)[-k:].mean())
