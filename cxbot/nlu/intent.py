"""Embedding-based intent classifier with an out-of-scope threshold.

Each intent is scored by the mean cosine similarity of the message to its ``k`` nearest
example utterances; the best score is the confidence, and below ``threshold`` the message
is out of scope (``intent=None``). Scoring takes the turn's one embedding of the message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cxbot.types import IntentScore

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder, Matrix, Vector

__all__ = ["IntentClassifier"]


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

    def classify(self, vector: Vector) -> tuple[str | None, float, tuple[IntentScore, ...]]:
        ranking = self.rank(vector)
        best = ranking[0] if ranking else IntentScore("", 0.0)
        intent = best.name if best.score >= self.threshold else None
        return intent, best.score, ranking
