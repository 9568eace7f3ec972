"""Hand back: a human agent returns a conversation to the assistant.

The agent may leave a note and correct slots of the task in progress. Corrected values are
read and validated the way a customer's message is (entities, choices, the slot's
validators); the assistant then asks for the next missing slot, or for confirmation, so the
customer carries on where the task stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cxbot.conversation.events import (
    BotUttered,
    ConfirmationRequested,
    Event,
    HandedBack,
    SlotRequested,
    SlotSet,
)
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState
from cxbot.errors import InvalidSlot
from cxbot.flows.actions import ActionContext
from cxbot.flows.engine import FlowEngine
from cxbot.flows.slots import Rejected, extract_slot
from cxbot.nlu.entities import extract_entities

__all__ = ["hand_back"]


def hand_back(
    state: ConversationState,
    *,
    flows: FlowEngine,
    ctx: ActionContext,
    note: str | None = None,
    slots: Mapping[str, str] | None = None,
    agent_id: str | None = None,
    entity_names: Mapping[str, Sequence[str]] | None = None,
) -> list[Event]:
    """The events of handing ``state`` back: ``HandedBack``, the corrected slots and, with a
    task in progress, the assistant asking for what the task needs next.

    Raises :class:`InvalidSlot` for a slot the task does not have, a value that is not one
    the slot accepts, or slots without a task in progress.
    """
    corrected = dict(slots or {})
    events: list[Event] = [HandedBack(note, corrected, agent_id)]
    frame = state.flow
    if frame is None:
        if corrected:
            raise InvalidSlot(
                f"conversation {state.conversation_id!r} has no task in progress to set "
                f"{', '.join(sorted(corrected))} on"
            )
        return events
    spec = flows.flows[frame.flow]
    by_name = {s.name: s for s in spec.slots}
    for name, raw in corrected.items():
        slot = by_name.get(name)
        if slot is None:
            raise InvalidSlot(
                f"flow {spec.name!r} has no slot {name!r} (its slots: {', '.join(by_name)})"
            )
        entities = extract_entities(raw, ctx.now, names=entity_names)
        found = extract_slot(slot, raw, entities, ctx)
        if found is None:
            raise InvalidSlot(f"{raw!r} is not a value of slot {name!r} of flow {spec.name!r}")
        if isinstance(found, Rejected):
            raise InvalidSlot(f"slot {name!r} of flow {spec.name!r}: {found.reason}")
        events.append(SlotSet(name, found.value))
    after = apply_all(state, events)
    assert after.flow is not None
    filled = after.flow.slots
    missing = next((s for s in spec.slots if s.name not in filled and s.applies(filled)), None)
    events.append(
        SlotRequested(missing.name) if missing is not None else ConfirmationRequested(spec.name)
    )
    events.append(BotUttered(flows.prompt(apply_all(state, events), ctx), "flow"))
    return events
