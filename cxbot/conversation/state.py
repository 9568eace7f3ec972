"""Conversation state: what the reducer builds from events, and its JSON form."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConversationState", "FlowFrame", "VerificationFrame"]


@dataclass(frozen=True, slots=True)
class FlowFrame:
    """The flow in progress: filled slots, the slot asked for, whether we await a yes/no."""

    flow: str
    slots: Mapping[str, str] = field(default_factory=dict)
    requested: str | None = None
    awaiting_confirmation: bool = False
    retries: int = 0


@dataclass(frozen=True, slots=True)
class VerificationFrame:
    """A step-up verification in progress: the field asked for, whether the answers so far
    matched, failed attempts in this conversation, the request waiting on it, and the
    customer checked (for a session with no customer id: the one whose customer number it
    gave, ``None`` before it or when no profile has it)."""

    step: str | None = None
    matched: bool = True
    attempts: int = 0
    pending: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Everything the assistant remembers about one conversation."""

    conversation_id: str
    customer_id: str | None = None
    turn: int = 0
    flow: FlowFrame | None = None
    failed_turns: int = 0
    handed_off: bool = False
    history: tuple[tuple[str, str], ...] = ()
    last_intent: str | None = None
    version: int = 0
    unsure_turns: int = 0
    """Turns in a row the intent classifier did not understand (outside flows)."""
    blocked_turns: int = 0
    """Messages of the conversation a guardrail blocked (reset when an agent hands back)."""
    sentiment: tuple[float, ...] = ()
    """Sentiment scores of the latest customer messages, oldest first."""
    topic: str | None = None
    """The policy topic (complaint, bereavement, fraud…) the conversation turned to."""
    verification: VerificationFrame | None = None
    """A step-up verification in progress (date of birth, postcode…)."""
    verified_until: str | None = None
    """Until when (ISO time) the customer's step-up verification holds."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConversationState:
        flow = data.get("flow")
        return cls(
            conversation_id=data["conversation_id"],
            customer_id=data.get("customer_id"),
            turn=data.get("turn", 0),
            flow=FlowFrame(**flow) if flow else None,
            failed_turns=data.get("failed_turns", 0),
            handed_off=data.get("handed_off", False),
            history=tuple((s, t) for s, t in data.get("history", ())),
            last_intent=data.get("last_intent"),
            version=data.get("version", 0),
            unsure_turns=data.get("unsure_turns", 0),
            blocked_turns=data.get("blocked_turns", 0),
            sentiment=tuple(data.get("sentiment", ())),
            topic=data.get("topic"),
            verification=VerificationFrame(**data["verification"])
            if data.get("verification")
            else None,
            verified_until=data.get("verified_until"),
        )
