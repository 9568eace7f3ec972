"""The NLU stage: the turn's vector → intent, confidence, ranking; the text → entities."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cxbot.nlu.entities import extract_entities
from cxbot.nlu.intent import IntentClassifier
from cxbot.types import NLUResult

if TYPE_CHECKING:
    from cxbot.embeddings import Vector

__all__ = ["NLUStage"]


class NLUStage:
    """Understands one message: what the customer wants and the values they gave."""

    def __init__(self, classifier: IntentClassifier) -> None:
        self.classifier = classifier

    def warm_up(self) -> None:
        self.classifier.warm_up()

    def run(self, text: str, vector: Vector, now: datetime) -> NLUResult:
        """``text`` is the original (unredacted) message: entities need the real values."""
        intent, confidence, ranking = self.classifier.classify(vector)
        return NLUResult(
            intent=intent,
            confidence=confidence,
            ranking=ranking[:5],
            entities=tuple(extract_entities(text, now)),
        )
