"""Prompt-injection and jailbreak detection: normalisation, pattern rules, and similarity of
the turn's embedding to known attacks (``guardrails/input/attacks.txt``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxbot.guardrails.base import GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailPlugin

__all__ = ["InjectionGuard", "normalise"]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.I))
    for name, pattern in (
        (
            "override",
            r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|your|the|any)\b.{0,30}\b(instructions?|rules?|prompts?|guidelines?|directions?|polic(y|ies))",
        ),
        (
            "reveal_prompt",
            r"\b(reveal|show|print|repeat|output|tell me|what is|what's|display|leak)\b.{0,40}\b(system|hidden|initial|original|secret)\s+(prompt|instructions?|message|rules?)",
        ),
        (
            "persona",
            r"\b(you are now|from now on you are|act as|pretend (to be|you are)|roleplay as)\b.{0,40}\b(dan|unfiltered|uncensored|jailbroken|evil|(without|with no|no) (any )?(rules|restrictions|limits|filters))",
        ),
        (
            "mode_switch",
            r"\b(enable|activate|enter|switch (on|to|into)|turn on|go into|you are in|you're in|now in)\b.{0,20}\b(developer|debug|god|admin|sudo|jailbreak|dan)\s+mode\b|\b(jailbreak|dan|god)\s+mode\b|^\W*(developer|debug|admin|sudo)\s+mode\s*[:\-]",
        ),
        (
            "no_rules",
            r"\b(no|without) (any )?(restrictions|filters|guardrails|rules|limitations)\b.{0,30}\b(respond|answer|reply|now)",
        ),
        ("delimiter", r"(^|\n)\s*(system|assistant)\s*:|<\|?(system|im_start)\|?>|\[/?INST\]"),
    )
)


def normalise(text: str) -> str:
    """Fold confusables and width forms, drop zero-width characters, undo leetspeak."""
    folded = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    return folded.lower().translate(_LEET)


class InjectionGuard:
    """Blocks messages that try to override, reveal or replace the assistant's instructions."""

    name = "injection"

    def __init__(
        self,
        embed_many: Callable[[list[str]], Any],
        threshold: float,
        attacks_file: Path | None = None,
    ) -> None:
        self._embed_many = embed_many
        self.threshold = threshold
        self._attacks_file = attacks_file or Path(__file__).with_name("attacks.txt")
        self._attack_vectors: Any = None

    def warm_up(self) -> None:
        if self._attack_vectors is None:
            lines = self._attacks_file.read_text(encoding="utf-8").splitlines()
            attacks = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
            self._attack_vectors = self._embed_many(attacks)

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        plain = normalise(text)
        for name, rule in _RULES:
            if rule.search(plain) or rule.search(text):
                return Verdict("block", f"injection pattern: {name}", 1.0)
        self.warm_up()
        score = float((self._attack_vectors @ ctx.vector()).max())
        if score >= self.threshold:
            return Verdict("block", "similar to a known injection attack", score)
        return Verdict("allow", "", score)


PLUGIN = GuardrailPlugin(
    "injection",
    "input",
    lambda deps: InjectionGuard(deps.embed_many, deps.config.injection_similarity),
    "Blocks prompt-injection and jailbreak attempts.",
)
