"""NLU: intent classification with out-of-scope detection, and entity extraction."""

from cxbot.nlu.intent import IntentClassifier
from cxbot.nlu.stage import NLUStage

__all__ = ["IntentClassifier", "NLUStage"]
