"""Events: the only way a turn changes conversation state (applied by ``reducer.apply``).

Stages return events; tests compare event lists. Each event is a frozen dataclass with a
``kind`` literal, so a ``match`` over ``Event`` is exhaustive.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "BotUttered",
    "ConfirmationRequested",
    "ConversationContinued",
    "CustomerIdentified",
    "Degraded",
    "Event",
    "FlowCancelled",
    "FlowCompleted",
    "FlowStarted",
    "GuardrailTriggered",
    "HandedBack",
    "HandoffRequested",
    "SlotRejected",
    "SlotRequested",
    "SlotSet",
    "TurnAssessed",
    "UserUttered",
    "VerificationFailed",
    "VerificationLocked",
    "VerificationRequested",
    "VerificationSucceeded",
    "event_from_dict",
    "event_to_dict",
]


@dataclass(frozen=True, slots=True)
class UserUttered:
    """The customer said something (text already PII-redacted)."""

    text: str
    intent: str | None = None
    confidence: float = 0.0
    kind: Literal["user_uttered"] = "user_uttered"


@dataclass(frozen=True, slots=True)
class BotUttered:
    """The assistant replied; ``failed`` marks a turn that did not help the customer;
    ``sources`` are the documents its answer cited."""

    text: str
    route: str
    failed: bool = False
    sources: tuple[str, ...] = ()
    kind: Literal["bot_uttered"] = "bot_uttered"


@dataclass(frozen=True, slots=True)
class CustomerIdentified:
    customer_id: str
    kind: Literal["customer_identified"] = "customer_identified"


@dataclass(frozen=True, slots=True)
class FlowStarted:
    flow: str
    kind: Literal["flow_started"] = "flow_started"


@dataclass(frozen=True, slots=True)
class SlotSet:
    slot: str
    value: str | None
    kind: Literal["slot_set"] = "slot_set"


@dataclass(frozen=True, slots=True)
class SlotRequested:
    slot: str
    kind: Literal["slot_requested"] = "slot_requested"


@dataclass(frozen=True, slots=True)
class SlotRejected:
    """A value for the requested slot failed validation (counts toward max retries)."""

    slot: str
    reason: str
    kind: Literal["slot_rejected"] = "slot_rejected"


@dataclass(frozen=True, slots=True)
class ConfirmationRequested:
    flow: str
    kind: Literal["confirmation_requested"] = "confirmation_requested"


@dataclass(frozen=True, slots=True)
class FlowCompleted:
    flow: str
    outcome: str
    kind: Literal["flow_completed"] = "flow_completed"


@dataclass(frozen=True, slots=True)
class FlowCancelled:
    flow: str
    kind: Literal["flow_cancelled"] = "flow_cancelled"


@dataclass(frozen=True, slots=True)
class GuardrailTriggered:
    """Audit record of a guardrail that blocked or rewrote a message."""

    stage: str
    guardrail: str
    action: str
    reason: str
    score: float = 1.0
    kind: Literal["guardrail_triggered"] = "guardrail_triggered"


@dataclass(frozen=True, slots=True)
class HandoffRequested:
    """The conversation went to a person: why, to which queue, on which policy topic, and
    whether it was outside business hours."""

    reason: str
    queue: str
    topic: str | None = None
    after_hours: bool = False
    kind: Literal["handoff_requested"] = "handoff_requested"


@dataclass(frozen=True, slots=True)
class TurnAssessed:
    """What the handoff triggers read from one customer message: not understood (low
    confidence outside a flow), its sentiment score, the policy topic it raised."""

    unsure: bool
    sentiment: float
    topic: str | None = None
    kind: Literal["turn_assessed"] = "turn_assessed"


@dataclass(frozen=True, slots=True)
class VerificationRequested:
    """The assistant asked for the profile field ``step`` to check the customer is who
    they say. ``matched``: every answer so far matched the profile (the customer is not
    told which one did not); ``pending`` is the request that needs verifying, answered
    once it succeeds. No answer is ever recorded. ``customer_id`` is the customer being
    checked: ``None`` while an anonymous session is asked for its customer number, and
    after a number no profile has."""

    customer_id: str | None
    step: str
    matched: bool = True
    pending: str | None = None
    kind: Literal["verification_requested"] = "verification_requested"


@dataclass(frozen=True, slots=True)
class VerificationSucceeded:
    """The customer's answers matched their profile: account data may be shared until
    ``expires_at`` (ISO time)."""

    customer_id: str
    expires_at: str
    kind: Literal["verification_succeeded"] = "verification_succeeded"


@dataclass(frozen=True, slots=True)
class VerificationFailed:
    """A complete set of answers did not match; ``attempt`` counts this conversation's.
    ``customer_id`` is ``None`` when the customer number given matched no profile."""

    customer_id: str | None
    attempt: int
    kind: Literal["verification_failed"] = "verification_failed"


@dataclass(frozen=True, slots=True)
class VerificationLocked:
    """Too many failed verifications: none is accepted for the customer until ``until``
    (ISO time), and the conversation goes to a person (``customer_id`` ``None``: the
    customer number given matched no profile; the conversation is locked)."""

    customer_id: str | None
    attempts: int
    until: str
    kind: Literal["verification_locked"] = "verification_locked"


@dataclass(frozen=True, slots=True)
class ConversationContinued:
    """The customer's latest conversation ``source`` (another channel or session)
    continues here: its task in progress and its recent messages."""

    source: str
    flow: str | None = None
    slots: dict[str, str] = dataclasses.field(default_factory=dict)
    requested: str | None = None
    awaiting_confirmation: bool = False
    history: tuple[tuple[str, str], ...] = ()
    kind: Literal["conversation_continued"] = "conversation_continued"


@dataclass(frozen=True, slots=True)
class HandedBack:
    """A human agent returned the conversation to the assistant, with an optional note and
    the slots they corrected (also recorded as ``SlotSet`` events)."""

    note: str | None = None
    slots: dict[str, str] = dataclasses.field(default_factory=dict)
    agent_id: str | None = None
    kind: Literal["handed_back"] = "handed_back"


@dataclass(frozen=True, slots=True)
class Degraded:
    """A backend failed during the turn and the turn went on without it.

    ``component`` is what was left out (``rag_answer``, ``intent_classify``,
    ``query_rewrite``, ``handoff_summary`` — the chat model's uses — or ``vector_store``);
    ``error`` the kind of failure (``timeout``, ``server_error``, ``unavailable``…);
    ``attempts`` the requests sent and ``elapsed_ms`` the time they took; ``fallback`` what
    the turn did instead.
    """

    component: str
    error: str
    attempts: int = 0
    elapsed_ms: float = 0.0
    fallback: str = ""
    kind: Literal["degraded"] = "degraded"


Event: TypeAlias = (
    UserUttered
    | BotUttered
    | CustomerIdentified
    | FlowStarted
    | SlotSet
    | SlotRequested
    | SlotRejected
    | VerificationRequested
    | VerificationSucceeded
    | VerificationFailed
    | VerificationLocked
    | ConversationContinued
    | ConfirmationRequested
    | FlowCompleted
    | FlowCancelled
    | GuardrailTriggered
    | HandoffRequested
    | TurnAssessed
    | HandedBack
    | Degraded
)

_BY_KIND: dict[str, type[Any]] = {
    str(cls.__dataclass_fields__["kind"].default): cls
    for cls in (
        UserUttered,
        BotUttered,
        CustomerIdentified,
        FlowStarted,
        SlotSet,
        SlotRequested,
        SlotRejected,
        VerificationRequested,
        VerificationSucceeded,
        VerificationFailed,
        VerificationLocked,
        ConversationContinued,
        ConfirmationRequested,
        FlowCompleted,
        FlowCancelled,
        GuardrailTriggered,
        HandoffRequested,
        TurnAssessed,
        HandedBack,
        Degraded,
    )
}


def event_to_dict(event: Event) -> dict[str, Any]:
    return dataclasses.asdict(event)


def event_from_dict(data: dict[str, Any]) -> Event:
    cls = _BY_KIND[data["kind"]]
    # JSON has no tuples: lists come back as the tuples the dataclasses hold
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    event: Event = cls(**fields)
    return event
