"""The optional LLM intent classifier (``nlu.llm: true`` with an LLM configured).

The configured chat model reads the intents (name, description, a few examples; prompt
``prompts/intent_classify.j2``) and the PII-redacted message and answers JSON
``{"intent", "confidence"}``. An unknown intent, malformed JSON or a failing endpoint
returns ``None``, and the trained model's answer stands.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cxbot.errors import LLMUnavailable
from cxbot.llm import endpoint_for
from cxbot.prompts import PromptLibrary, PromptTask

__all__ = ["LLMIntentClassifier"]

log = logging.getLogger("cxbot.nlu")
EXAMPLES_SHOWN = 4


class LLMIntentClassifier:
    def __init__(
        self,
        chat_model: Any,
        prompts: PromptLibrary,
        examples: Mapping[str, Sequence[str]],
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        self.chat_model = endpoint_for(chat_model, "intent_classify")
        self.prompts = prompts
        self.intents = [
            {
                "name": name,
                "description": (descriptions or {}).get(name, ""),
                "examples": list(texts[:EXAMPLES_SHOWN]),
            }
            for name, texts in sorted(examples.items())
        ]
        self._names = {i["name"] for i in self.intents}

    def classify(self, message: str) -> tuple[str | None, float] | None:
        """(intent or None for out of scope, confidence), or None when the LLM failed."""
        from langchain_core.messages import HumanMessage

        prompt = self.prompts.render(
            PromptTask.INTENT_CLASSIFY, intents=self.intents, message=message
        )
        assert self.chat_model is not None
        try:
            reply = self.chat_model.invoke([HumanMessage(prompt)])
        except LLMUnavailable as exc:  # the trained model answers instead
            log.warning("LLM intent classification failed: %s", exc)
            return None
        text = str(reply.content)
        match = re.search(r"\{.*\}", text, re.S)
        try:
            data = json.loads(match.group(0) if match else text)
            name = str(data["intent"]).strip()
            confidence = min(max(float(data.get("confidence", 1.0)), 0.0), 1.0)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("LLM intent classification: unusable answer %r", text[:200])
            return None
        if name.lower() == "none":
            return None, confidence
        if name not in self._names:
            log.warning("LLM intent classification: unknown intent %r", name)
            return None
        return name, confidence
