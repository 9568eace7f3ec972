"""The reducer: the only place conversation state changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import assert_never

from cxbot.conversation.events import (
    BotUttered,
    ConfirmationRequested,
    ConversationContinued,
    CustomerIdentified,
    Degraded,
    Event,
    FlowCancelled,
    FlowCompleted,
    FlowStarted,
    GuardrailTriggered,
    HandedBack,
    HandoffRequested,
    SlotRejected,
    SlotRequested,
    SlotSet,
    TurnAssessed,
    UserUttered,
    VerificationFailed,
    VerificationLocked,
    VerificationRequested,
    VerificationSucceeded,
)
from cxbot.conversation.state import ConversationState, FlowFrame, VerificationFrame

__all__ = ["apply", "apply_all"]

_SENTIMENT_KEPT = 5


def _frame(state: ConversationState) -> FlowFrame:
    if state.flow is None:
        raise ValueError("flow event without a flow in progress")
    return state.flow


def apply(state: ConversationState, event: Event, *, history_limit: int = 20) -> ConversationState:
    """Return the state after ``event``."""
    match event:
        case UserUttered():
            history = (*state.history, ("user", event.text))[-history_limit:]
            return replace(state, history=history, last_intent=event.intent)
        case BotUttered():
            history = (*state.history, ("bot", event.text))[-history_limit:]
            failed = state.failed_turns + 1 if event.failed else 0
            return replace(state, history=history, failed_turns=failed)
        case CustomerIdentified():
            if event.customer_id == state.customer_id:
                return state
            # another customer: nothing verified for the previous one carries over
            return replace(
                state, customer_id=event.customer_id, verification=None, verified_until=None
            )
        case FlowStarted():
            return replace(state, flow=FlowFrame(flow=event.flow))
        case SlotSet():
            frame = _frame(state)
            slots = dict(frame.slots)
            if event.value is None:
                slots.pop(event.slot, None)
            else:
                slots[event.slot] = event.value
            retries = 0 if event.slot == frame.requested else frame.retries
            return replace(state, flow=replace(frame, slots=slots, retries=retries))
        case SlotRequested():
            frame = _frame(state)
            retries = frame.retries if frame.requested == event.slot else 0
            return replace(
                state,
                flow=replace(
                    frame, requested=event.slot, awaiting_confirmation=False, retries=retries
                ),
            )
        case SlotRejected():
            frame = _frame(state)
            return replace(state, flow=replace(frame, retries=frame.retries + 1))
        case ConfirmationRequested():
            frame = _frame(state)
            return replace(state, flow=replace(frame, requested=None, awaiting_confirmation=True))
        case FlowCompleted() | FlowCancelled():
            return replace(state, flow=None)
        case VerificationRequested():
            check = state.verification or VerificationFrame()
            pending = event.pending if event.pending is not None else check.pending
            return replace(
                state,
                verification=replace(
                    check,
                    step=event.step,
                    matched=event.matched,
                    pending=pending,
                    customer_id=event.customer_id,
                ),
            )
        case VerificationFailed():
            check = state.verification or VerificationFrame()
            return replace(
                state,
                verification=replace(check, step=None, matched=True, attempts=event.attempt),
            )
        case VerificationSucceeded():
            return replace(state, verification=None, verified_until=event.expires_at)
        case VerificationLocked():
            return replace(state, verification=None, verified_until=None)
        case ConversationContinued():
            # the other conversation is the newer one: its task (or none) and its messages,
            # which include this conversation's earlier ones, replace what was here
            flow = (
                FlowFrame(
                    flow=event.flow,
                    slots=dict(event.slots),
                    requested=event.requested,
                    awaiting_confirmation=event.awaiting_confirmation,
                )
                if event.flow is not None
                else None
            )
            carried = tuple((str(who), str(text)) for who, text in event.history)
            history = carried[-history_limit:] if carried else state.history
            return replace(state, flow=flow, history=history)
        case GuardrailTriggered():
            if event.action != "block":
                return state
            return replace(state, blocked_turns=state.blocked_turns + 1)
        case HandoffRequested():
            return replace(state, handed_off=True, topic=event.topic or state.topic)
        case TurnAssessed():
            window = (*state.sentiment, event.sentiment)[-_SENTIMENT_KEPT:]
            return replace(
                state,
                unsure_turns=state.unsure_turns + 1 if event.unsure else 0,
                sentiment=window if any(window) else (),  # all neutral: nothing to remember
                topic=event.topic or state.topic,
            )
        case HandedBack():
            flow = replace(state.flow, retries=0) if state.flow is not None else None
            return replace(
                state,
                handed_off=False,
                failed_turns=0,
                unsure_turns=0,
                blocked_turns=0,
                sentiment=(),
                flow=flow,
            )
        case Degraded():
            return state  # an audit record: the turn's other events say what it did
        case _:
            assert_never(event)


def apply_all(
    state: ConversationState, events: Iterable[Event], *, history_limit: int = 20
) -> ConversationState:
    for event in events:
        state = apply(state, event, history_limit=history_limit)
    return state
