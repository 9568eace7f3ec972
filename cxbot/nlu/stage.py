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
    from cxbot.nlu.llm import LLMIntentClassifier

__all__ = ["NLUStage"]


class NLUStage:
    """Understands one message: what the customer wants and the values they gave."""

    def __init__(
        self,
        classifier: IntentScorer,
        names: Callable[[], Mapping[str, Sequence[str]]] | None = None,
        llm: LLMIntentClassifier | None = None,
    ) -> None:
        self.classifier = classifier
        self.llm = llm
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

    def run(
        self, text: str, features: Features, now: datetime, redacted: str | None = None
    ) -> NLUResult:
        """``text`` is the original (unredacted) message: entities need the real values;
        ``features`` are the one encoding of the ``redacted`` message, which is all the
        LLM classifier (when configured) sees."""
        intent, confidence, ranking = self.classifier.classify(features)
        if self.llm is not None:
            answer = self.llm.classify(redacted if redacted is not None else text)
            if answer is not None:
                intent, confidence = answer
        return NLUResult(
            intent=intent,
            confidence=confidence,
            ranking=ranking[:5],
            entities=tuple(extract_entities(text, now, names=self.names)),
        )
