"""The router: (NLU result, conversation state) → where the turn goes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, TypeAlias

from cxbot.conversation.state import ConversationState
from cxbot.handoff.triggers import HandoffReason, customer_asked
from cxbot.types import NLUResult

__all__ = [
    "SMALL_TALK",
    "FlowRoute",
    "HandoffRoute",
    "RagRoute",
    "SmallTalkRoute",
    "TurnRoute",
    "route",
]

SMALL_TALK = ("greet", "thanks", "goodbye")
SWITCH_MARGIN = 0.15
"""How far above the out-of-scope threshold another flow's intent must score to switch."""


@dataclass(frozen=True, slots=True)
class FlowRoute:
    flow: str
    start: bool
    kind: Literal["flow"] = "flow"


@dataclass(frozen=True, slots=True)
class RagRoute:
    kind: Literal["rag"] = "rag"


@dataclass(frozen=True, slots=True)
class HandoffRoute:
    reason: HandoffReason
    kind: Literal["handoff"] = "handoff"


@dataclass(frozen=True, slots=True)
class SmallTalkRoute:
    intent: str
    kind: Literal["small_talk"] = "small_talk"


TurnRoute: TypeAlias = FlowRoute | RagRoute | HandoffRoute | SmallTalkRoute


def route(
    nlu: NLUResult,
    state: ConversationState,
    flows: Collection[str],
    threshold: float,
    *,
    continues_flow: bool = False,
) -> TurnRoute:
    """``continues_flow``: the message corrects or fills the flow in progress, which then
    keeps the turn whatever other flow the intent points to."""
    if customer_asked(nlu):
        return HandoffRoute("customer_request")
    if state.flow is not None:
        switch = (
            nlu.intent in flows
            and nlu.intent != state.flow.flow
            and nlu.confidence >= threshold + SWITCH_MARGIN
            and not continues_flow
        )
        if switch and nlu.intent is not None:
            return FlowRoute(nlu.intent, start=True)
        return FlowRoute(state.flow.flow, start=False)
    if nlu.intent in flows and nlu.intent is not None:
        return FlowRoute(nlu.intent, start=True)
    if nlu.intent in SMALL_TALK and nlu.intent is not None:
        return SmallTalkRoute(nlu.intent)
    return RagRoute()
