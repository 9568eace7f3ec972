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
    from cxbot.embeddings import Embedder, Vector

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

    def rank(self, vector: Vector) -> tuple[IntentScore, ...]:
        import numpy as np

        self.warm_up()
        sims = self._matrix @ vector
        labels = np.asarray(self._labels)
        scores = []
        for name in self.examples:
            own = np.sort(sims[labels == name])[::-1][: self.neighbours]
            scores.append(IntentScore(name, float(own.mean())))
        return tuple(sorted(scores, key=lambda s: s.score, reverse=True))

    def classify(self, vector: Vector) -> tuple[str | None, float, tuple[IntentScore, ...]]:
        ranking = self.rank(vector)
        best = ranking[0] if ranking else IntentScore("", 0.0)
        intent = best.name if best.score >= self.threshold else None
        return intent, best.score, ranking
