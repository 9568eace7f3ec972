"""Handoff triggers: pure predicates over the turn's understanding and the conversation state."""

from __future__ import annotations

from typing import Literal

from cxbot.conversation.state import ConversationState
from cxbot.types import NLUResult

__all__ = ["HUMAN_INTENT", "HandoffReason", "customer_asked", "repeated_failure"]

HandoffReason = Literal["customer_request", "repeated_failure", "flow_retries"]
HUMAN_INTENT = "human_agent"


def customer_asked(nlu: NLUResult) -> bool:
    """The customer asked for a person."""
    return nlu.intent == HUMAN_INTENT


def repeated_failure(state: ConversationState, max_failed_turns: int) -> bool:
    """The assistant failed ``max_failed_turns`` turns in a row (state after this turn)."""
    return state.failed_turns >= max_failed_turns
