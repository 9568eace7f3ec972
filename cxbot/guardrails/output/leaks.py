"""Output leak guardrails: another customer's contact details, and the system prompt."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from cxbot.guardrails.base import ALLOW, GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailPlugin
from cxbot.nlu.entities import extract_entities

__all__ = ["PiiLeakGuard", "PromptLeakGuard"]


class PiiLeakGuard:
    """Blocks a reply that contains contact or card data other than the current customer's."""

    name = "pii_leak"

    def __init__(self, known_contacts: Callable[[], Collection[str]]) -> None:
        self._known_contacts = known_contacts

    def warm_up(self) -> None:
        return None

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        own = {c.lower() for c in ctx.own_contacts}
        for entity in extract_entities(
            text, ctx.now, kinds=("email", "phone", "card_number", "iban")
        ):
            if entity.value.lower() in own:
                continue
            if entity.kind in ("card_number", "iban"):
                return Verdict("block", f"reply contains a {entity.kind.replace('_', ' ')}", 1.0)
            if entity.value.lower() in self._known_contacts():
                return Verdict("block", f"reply contains another customer's {entity.kind}", 1.0)
        return ALLOW


class PromptLeakGuard:
    """Blocks a reply that repeats a run of eight or more words of the system prompt."""

    name = "prompt_leak"
    window = 8

    def __init__(self, system_prompt: str) -> None:
        self._shingles = self._windows(system_prompt)

    def _windows(self, text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9']+", text.lower())
        return {tuple(words[i : i + self.window]) for i in range(len(words) - self.window + 1)}

    def warm_up(self) -> None:
        return None

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        shared = self._windows(text) & self._shingles
        if shared:
            return Verdict("block", "reply repeats the system prompt", min(1.0, len(shared) / 5))
        return ALLOW


PII_LEAK = GuardrailPlugin(
    "pii_leak",
    "output",
    lambda deps: PiiLeakGuard(deps.known_contacts),
    "Blocks replies with another customer's contact or card data.",
)
PROMPT_LEAK = GuardrailPlugin(
    "prompt_leak",
    "output",
    lambda deps: PromptLeakGuard(deps.system_prompt),
    "Blocks replies that repeat the system prompt.",
)
