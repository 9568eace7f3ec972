"""The guardrail contract: ``check(text, ctx) -> Verdict``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from cxbot.embeddings import Vector

__all__ = ["Guardrail", "GuardrailContext", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """``allow``; ``block`` (the turn gets a safe reply: ``text`` when the unit gives one,
    else the stage's canned reply); ``rewrite`` (``text`` replaces it)."""

    action: Literal["allow", "block", "rewrite"]
    reason: str = ""
    score: float = 0.0
    text: str | None = None


ALLOW = Verdict("allow")


@dataclass(slots=True)
class GuardrailContext:
    """What a guardrail may know about the turn besides the text.

    ``vector`` embeds the (possibly rewritten) user message on first use; the embedder's
    cache makes the turn's later uses free, so the message is embedded once. ``passages``
    are the texts a knowledge answer cites (set for RAG replies only; empty otherwise).
    """

    now: datetime
    customer_id: str | None
    embed: Callable[[str], Vector]
    message: str = ""
    own_contacts: Collection[str] = field(default_factory=frozenset)
    own_names: Collection[str] = field(default_factory=frozenset)
    vault: dict[str, list[str]] = field(default_factory=dict)
    """Values the PII redactor replaced this turn, by placeholder; never stored."""
    passages: Sequence[str] = ()
    _embedded: tuple[str, Vector] | None = None

    def vector(self) -> Vector:
        """The embedding of the current message (computed once per message text)."""
        if self._embedded is None or self._embedded[0] != self.message:
            self._embedded = (self.message, self.embed(self.message))
        return self._embedded[1]


class Guardrail(Protocol):
    """One guardrail unit."""

    name: str

    def warm_up(self) -> None: ...

    def check(self, text: str, ctx: GuardrailContext) -> Verdict: ...
