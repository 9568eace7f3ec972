"""Value objects shared by the stages of a turn: frozen dataclasses, no behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cxbot.conversation.events import Event
    from cxbot.handoff.summary import HandoffSummary

__all__ = [
    "Channel",
    "Citation",
    "Entity",
    "EntityKind",
    "IntentScore",
    "NLUResult",
    "RenderedReply",
    "Reply",
    "Route",
]

Route = Literal["flow", "rag", "handoff", "blocked"]
Channel = Literal["web", "sms", "whatsapp", "voice", "email"]
"""Where the customer is talking to the assistant; decides how a reply is rendered."""
EntityKind = Literal[
    "date", "time", "phone", "email", "card_number", "iban", "amount", "branch", "advisor"
]


@dataclass(frozen=True, slots=True)
class Entity:
    """A span of the user message with a normalised value.

    ``value`` is normalised per kind: date ``YYYY-MM-DD``, time ``HH:MM`` (24h), phone E.164,
    email lower-cased, card number digits only, IBAN upper-case without spaces,
    amount ``"<number> <ISO currency>"`` (currency may be empty); branch and advisor: the
    canonical name from the caller's lists.
    """

    kind: EntityKind
    text: str
    start: int
    end: int
    value: str


@dataclass(frozen=True, slots=True)
class IntentScore:
    """One intent and the classifier's confidence in it (cosine similarity, 0..1)."""

    name: str
    score: float


@dataclass(frozen=True, slots=True)
class NLUResult:
    """What the NLU stage understood: the best intent (``None`` = out of scope) and entities."""

    intent: str | None
    confidence: float
    ranking: tuple[IntentScore, ...]
    entities: tuple[Entity, ...]


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage or profile fact a reply relies on.

    ``source`` is the document path relative to ``knowledge/`` (or ``profile: <field>``).
    """

    source: str
    title: str
    snippet: str
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class RenderedReply:
    """A reply as one channel sends it: the messages in order (a long SMS is several
    labelled parts) and the quick replies the channel shows as buttons."""

    channel: Channel
    parts: tuple[str, ...]
    buttons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of one turn, as the chat backend sees it."""

    text: str
    route: Route
    intent: str | None
    citations: tuple[Citation, ...] = ()
    events: tuple[Event, ...] = ()
    handoff: HandoffSummary | None = None
    trace: Mapping[str, float] = field(default_factory=dict)
    rendered: RenderedReply | None = None
    """``text`` rendered for the turn's channel (``None`` only for a reply built by hand)."""
