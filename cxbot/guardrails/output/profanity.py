"""Profanity in replies: masked (``f***``) or the reply blocked.

Words come from ``profanity.txt`` beside this module (one per line; a trailing ``*``
also matches longer words that start with it). Matching is by whole word after
normalisation, so a word inside another ("Scunthorpe", "assistant", "class") is never
flagged:

- letters stand in for lookalike digits and signs (leetspeak: ``sh1t``, ``@ss``, ``$hit``);
- runs of a repeated letter are shortened (``shiiiit``, ``fuuuck``): to two letters, then
  to one, and either form may match.

No library is used: the packages on the index either ship a model (profanity-check, whose
scikit-learn pickle is pinned to an old version) or match substrings (Scunthorpe).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from typing import Literal

from cxbot.guardrails.base import ALLOW, GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailPlugin

__all__ = ["ProfanityGuard", "WordList", "load_word_list"]

_WORD = re.compile(r"(?<![\w@$])[\w@$!|*]*[A-Za-z][\w@$!|*]*")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l"})  # fmt: skip
_RUN3 = re.compile(r"(\w)\1{2,}")
_RUN2 = re.compile(r"(\w)\1+")


class WordList:
    """Whole words and word prefixes to match."""

    def __init__(self, entries: Iterable[str]) -> None:
        words: set[str] = set()
        prefixes: set[str] = set()
        for raw in entries:
            entry = raw.split("#", 1)[0].strip().lower()
            if not entry:
                continue
            if entry.endswith("*"):
                prefixes.add(entry[:-1])
            else:
                words.add(entry)
        self.words = frozenset(words)
        self.prefixes = tuple(sorted(prefixes, key=len))

    def matches(self, token: str) -> bool:
        """Whether ``token`` (one word as written) is on the list after normalisation."""
        for form in _forms(token):
            if form in self.words or any(form.startswith(p) for p in self.prefixes):
                return True
        return False


def _forms(token: str) -> set[str]:
    lower = token.lower()
    plain = lower.strip("!|*")
    letters = plain.translate(_LEET) if any(not c.isalpha() for c in plain) else plain
    forms = set()
    for base in {plain, letters}:
        if not base.isalpha():
            continue
        two = _RUN3.sub(r"\1\1", base)
        forms.update({base, two, _RUN2.sub(r"\1", two)})
    return forms


@functools.cache
def load_word_list() -> WordList:
    """The word list shipped with cxbot (read once per process)."""
    text = resources.files("cxbot.guardrails.output").joinpath("profanity.txt")
    return WordList(text.read_text(encoding="utf-8").splitlines())


class ProfanityGuard:
    """Masks profanity in a reply (``f***``), or blocks the reply."""

    name = "profanity"

    def __init__(
        self, action: Literal["mask", "block"] = "mask", words: WordList | None = None
    ) -> None:
        self.action = action
        self._words = words

    def warm_up(self) -> None:
        if self._words is None:
            self._words = load_word_list()

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        words = self._words or load_word_list()
        found = [
            (m.start(), m.start() + len(m.group(0).rstrip("!|*")))
            for m in _WORD.finditer(text)
            if words.matches(m.group(0))
        ]
        if not found:
            return ALLOW
        reason = f"reply contains {len(found)} profane word{'s' * (len(found) > 1)}"
        if self.action == "block":
            return Verdict("block", reason, 1.0)
        masked, end = [], 0
        for start, stop in found:
            masked += [text[end:start], text[start] + "*" * (stop - start - 1)]
            end = stop
        masked.append(text[end:])
        return Verdict("rewrite", reason, 1.0, "".join(masked))


PLUGIN = GuardrailPlugin(
    "profanity",
    "output",
    lambda deps: ProfanityGuard(deps.config.profanity),
    "Masks profanity in replies (or blocks them: guardrails.profanity).",
)
