"""The NLU stage: the turn's vector → intent, confidence, ranking; the text → entities."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from cxbot.nlu.entities import extract_entities
from cxbot.types import NLUResult

if TYPE_CHECKING:
    from cxbot.embeddings import Features
    from cxbot.nlu.intent import IntentScorer

__all__ = ["NLUStage"]


class NLUStage:
    """Understands one message: what the customer wants and the values they gave."""

    def __init__(
        self,
        classifier: IntentScorer,
        names: Callable[[], Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self.classifier = classifier
        self._names_source = names
        self.names: Mapping[str, Sequence[str]] = {}
        """Canonical names per entity kind (branches, advisors), read on ``warm_up``."""

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def warm_up(self) -> None:
        self.classifier.warm_up()
        if self._names_source is not None and not self.names:
            self.names = self._names_source()

    def run(self, text: str, features: Features, now: datetime) -> NLUResult:
        """``text`` is the original (unredacted) message: entities need the real values;
        ``features`` are the one encoding of the (redacted) message."""
        intent, confidence, ranking = self.classifier.classify(features)
        return NLUResult(
            intent=intent,
            confidence=confidence,
            ranking=ranking[:5],
            entities=tuple(extract_entities(text, now, names=self.names)),
        )
