"""The flow engine: (state, message) → events and a reply text; never mutates state.

One turn inside a flow goes: confirmation answer → cancel → slot values (prefill and
corrections for every slot) → the next missing slot or the confirmation question →
after "yes", the action. The reducer applies the returned events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cxbot.conversation.events import (
    ConfirmationRequested,
    Event,
    FlowCancelled,
    FlowCompleted,
    FlowStarted,
    SlotRejected,
    SlotRequested,
    SlotSet,
)
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState, FlowFrame
from cxbot.errors import FlowSpecError
from cxbot.flows.actions import Action, ActionContext
from cxbot.flows.slots import (
    Choice,
    Extracted,
    Rejected,
    choices_for,
    display,
    extract_slot,
    past_time,
)
from cxbot.flows.spec import FlowSpec, SlotSpec
from cxbot.prompts import PromptLibrary, ReplyKey
from cxbot.types import Entity

__all__ = ["FlowEngine", "FlowStatus", "FlowTurn"]

FlowStatus = Literal[
    "in_progress", "completed", "cancelled", "no_progress", "failed", "needs_customer"
]

_YES = re.compile(
    r"^\W*(yes|yeah|yep|yup|sure|ok|okay|correct|confirm(ed)?|please do|go ahead|do it|"
    r"that'?s (right|correct|fine|great)|sounds good|perfect|absolutely|book it|y)\b",
    re.I,
)
_NO = re.compile(r"^\W*(no|nope|nah|not quite|wrong|incorrect|n)\b", re.I)
_CANCEL = re.compile(
    r"\b(never ?mind|forget (it|about it)|stop|cancel (that|this|it|the booking)|abort|quit|"
    r"don'?t bother|changed my mind|no longer (need|want))\b",
    re.I,
)
_QUESTION = re.compile(
    r"\?\s*$|^\W*(what|how|why|when|where|which|who|can|could|do|does|is|are|will)\b", re.I
)


@dataclass(frozen=True, slots=True)
class FlowTurn:
    """What the flow engine decided for one message."""

    status: FlowStatus
    events: tuple[Event, ...] = ()
    text: str = ""
    slots: Mapping[str, str] = field(default_factory=dict)


class FlowEngine:
    """Runs the flows of a project against the actions it knows."""

    def __init__(
        self, flows: Mapping[str, FlowSpec], actions: Mapping[str, Action], prompts: PromptLibrary
    ) -> None:
        self.flows = dict(flows)
        self.actions = actions
        self.prompts = prompts
        self._env: Any = None

    def _render(self, template: str, variables: Mapping[str, Any], flow: str) -> str:
        import jinja2

        if self._env is None:
            self._env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        try:
            return str(self._env.from_string(template).render(**variables)).strip()
        except jinja2.UndefinedError as exc:
            raise FlowSpecError(
                f"template variable missing: {exc.message}", file=f"flows/{flow}.yaml"
            ) from None

    # -- public --------------------------------------------------------------------------
    def start(
        self,
        state: ConversationState,
        flow: str,
        text: str,
        entities: Sequence[Entity],
        ctx: ActionContext,
    ) -> FlowTurn:
        spec = self.flows[flow]
        if spec.requires_customer and ctx.customer_id is None:
            return FlowTurn(status="needs_customer")
        return self._fill(spec, [FlowStarted(flow)], state, text, entities, ctx, started=True)

    def advance(
        self, state: ConversationState, text: str, entities: Sequence[Entity], ctx: ActionContext
    ) -> FlowTurn:
        frame = _require(state.flow)
        spec = self.flows[frame.flow]
        if (
            frame.awaiting_confirmation
            and _YES.search(text)
            and not self._has_values(spec, frame, text, entities, ctx)
        ):
            return self._run_action(spec, state, ctx)
        if _CANCEL.search(text):
            events: list[Event] = [FlowCancelled(spec.name)]
            return FlowTurn("cancelled", tuple(events), self._render(spec.cancelled, {}, spec.name))
        if (
            frame.awaiting_confirmation
            and _NO.search(text)
            and not self._has_values(spec, frame, text, entities, ctx)
        ):
            named = _named_slot(spec, text)
            if named is not None:
                return FlowTurn(
                    "in_progress",
                    (SlotSet(named.name, None), SlotRequested(named.name)),
                    self._ask(spec, named, frame, ctx, retry=False),
                )
            if len(spec.slots) == 1:  # nothing to change but the one choice: the answer is no
                return FlowTurn(
                    "cancelled",
                    (FlowCancelled(spec.name),),
                    self._render(spec.cancelled, {}, spec.name),
                )
            names = ", ".join(s.name for s in spec.slots)
            first = spec.slots[0].name
            return FlowTurn(
                "in_progress",
                (SlotRequested(first),),
                self.prompts.reply(ReplyKey.WHAT_TO_CHANGE, slots=names),
            )
        return self._fill(spec, [], state, text, entities, ctx, started=False)

    def prompt(self, state: ConversationState, ctx: ActionContext) -> str:
        """The question the flow is waiting on (to resume after a digression)."""
        frame = _require(state.flow)
        spec = self.flows[frame.flow]
        if frame.awaiting_confirmation:
            return self._confirm_text(spec, frame, ctx)
        slot = next((s for s in spec.slots if s.name == frame.requested), spec.slots[0])
        return self._ask(spec, slot, frame, ctx, retry=False)

    def quick_replies(self, state: ConversationState, ctx: ActionContext) -> tuple[str, ...]:
        """What the customer may tap to answer the flow's question: yes and no before a
        confirmation, the choices of a choice slot; nothing for free answers."""
        frame = state.flow
        if frame is None:
            return ()
        if frame.awaiting_confirmation:
            return (
                self.prompts.reply(ReplyKey.BUTTON_YES),
                self.prompts.reply(ReplyKey.BUTTON_NO),
            )
        spec = self.flows[frame.flow]
        slot = next((s for s in spec.slots if s.name == frame.requested), None)
        if slot is None or slot.type not in ("choice", "appointment"):
            return ()
        return tuple(c.label for c in choices_for(slot, ctx))

    # -- steps ---------------------------------------------------------------------------
    def continues(
        self, state: ConversationState, text: str, entities: Sequence[Entity], ctx: ActionContext
    ) -> bool:
        """Whether ``text`` carries on the flow in progress: it names one of its slots
        ("change the date") or gives a new value for one ("Thursday at 10 then")."""
        if state.flow is None:
            return False
        spec = self.flows[state.flow.flow]
        return _named_slot(spec, text) is not None or self._has_values(
            spec, state.flow, text, entities, ctx
        )

    def _has_values(
        self,
        spec: FlowSpec,
        frame: FlowFrame,
        text: str,
        entities: Sequence[Entity],
        ctx: ActionContext,
    ) -> bool:
        for slot in spec.slots:
            if slot.type == "appointment":
                continue
            found = extract_slot(slot, text, entities, ctx)
            if (
                isinstance(found, Extracted | Rejected)
                and frame.slots.get(slot.name) != found.value
            ):
                return True
        return False

    def _fill(
        self,
        spec: FlowSpec,
        events: list[Event],
        state: ConversationState,
        text: str,
        entities: Sequence[Entity],
        ctx: ActionContext,
        *,
        started: bool,
    ) -> FlowTurn:
        frame = _require(apply_all(state, events).flow)
        rejected: tuple[SlotSpec, Rejected] | None = None
        filled = False
        for slot in spec.slots:
            options = choices_for(slot, ctx) if slot.type in ("choice", "appointment") else []
            if slot.type == "appointment" and not options:
                return FlowTurn(
                    "cancelled",
                    (*events, FlowCancelled(spec.name)),
                    self.prompts.reply(ReplyKey.NO_APPOINTMENTS),
                )
            found = extract_slot(slot, text, entities, ctx, options)
            if isinstance(found, Extracted) and frame.slots.get(slot.name) != found.value:
                events.append(SlotSet(slot.name, found.value))
                filled = True
            elif isinstance(found, Rejected) and rejected is None:
                rejected = (slot, found)
        if not started and not filled and _QUESTION.search(text) and rejected is None:
            return FlowTurn("no_progress")
        local = apply_all(state, events)
        frame = _require(local.flow)
        notice = ctx.calendar.opening().notice_minutes
        gone = past_time(spec, frame.slots, ctx.now, notice) if rejected is None else None
        if gone is not None:
            events.append(SlotSet(gone[0].name, None))
            local = apply_all(state, events)
            rejected = gone
        if rejected is not None:
            slot, bad = rejected
            events += [SlotRequested(slot.name), SlotRejected(slot.name, bad.reason)]
            frame = _require(apply_all(local, events[-2:]).flow)
            if frame.retries >= spec.max_retries:
                return FlowTurn("failed", tuple(events), bad.reason)
            ask = self._ask(spec, slot, frame, ctx, retry=True)
            return FlowTurn("in_progress", tuple(events), f"Sorry, {bad.reason}. {ask}")
        named = _named_slot(spec, text)
        if not filled and not started and named is not None:
            events += [SlotSet(named.name, None), SlotRequested(named.name)]
            frame = _require(apply_all(local, events[-2:]).flow)
            return FlowTurn(
                "in_progress", tuple(events), self._ask(spec, named, frame, ctx, retry=False)
            )
        if not filled and not started and frame.requested is not None:
            slot = _slot(spec, frame.requested)
            events.append(SlotRejected(slot.name, "not understood"))
            frame = _require(apply_all(local, events[-1:]).flow)
            if frame.retries >= spec.max_retries:
                return FlowTurn("failed", tuple(events), "not understood")
            return FlowTurn(
                "in_progress", tuple(events), self._ask(spec, slot, frame, ctx, retry=True)
            )
        return self._next(spec, events, frame, ctx)

    def _next(
        self, spec: FlowSpec, events: list[Event], frame: FlowFrame, ctx: ActionContext
    ) -> FlowTurn:
        missing = next(
            (s for s in spec.slots if s.name not in frame.slots and s.applies(frame.slots)), None
        )
        if missing is not None:
            events.append(SlotRequested(missing.name))
            return FlowTurn(
                "in_progress",
                tuple(events),
                self._ask(spec, missing, frame, ctx, retry=False),
                frame.slots,
            )
        events.append(ConfirmationRequested(spec.name))
        return FlowTurn(
            "in_progress", tuple(events), self._confirm_text(spec, frame, ctx), frame.slots
        )

    def _run_action(self, spec: FlowSpec, state: ConversationState, ctx: ActionContext) -> FlowTurn:
        frame = _require(state.flow)
        action = self.actions[spec.action]
        asked = {s.name for s in spec.slots if s.applies(frame.slots)}
        result = action({k: v for k, v in frame.slots.items() if k in asked}, ctx)
        if result.status == "done":
            variables = {**self._variables(spec, frame, ctx), **result.values}
            return FlowTurn(
                "completed",
                (FlowCompleted(spec.name, "done"),),
                self._render(spec.done, variables, spec.name),
                frame.slots,
            )
        conflict = spec.conflict
        if conflict is None:
            raise FlowSpecError(
                f"action {spec.action} reported a conflict but the flow has no 'conflict' section",
                file=f"flows/{spec.name}.yaml",
                fix="add conflict: {slot: ..., message: ...}",
            )
        events: tuple[Event, ...] = (SlotSet(conflict.slot, None), SlotRequested(conflict.slot))
        variables = {**self._variables(spec, frame, ctx), "options": _join(result.options)}
        return FlowTurn("in_progress", events, self._render(conflict.message, variables, spec.name))

    # -- texts ---------------------------------------------------------------------------
    def _variables(self, spec: FlowSpec, frame: FlowFrame, ctx: ActionContext) -> dict[str, str]:
        variables: dict[str, str] = {}
        for slot in spec.slots:
            value = frame.slots.get(slot.name)
            if value is not None:
                options: list[Choice] = choices_for(slot, ctx) if slot.type == "appointment" else []
                variables[slot.name] = display(slot, value, options)
        return variables

    def _ask(
        self, spec: FlowSpec, slot: SlotSpec, frame: FlowFrame, ctx: ActionContext, *, retry: bool
    ) -> str:
        template = slot.reask if retry and slot.reask else slot.ask
        options = [c.label for c in choices_for(slot, ctx)]
        variables = {**self._variables(spec, frame, ctx), "options": _join(options)}
        return self._render(template, variables, spec.name)

    def _confirm_text(self, spec: FlowSpec, frame: FlowFrame, ctx: ActionContext) -> str:
        return self._render(spec.confirm, self._variables(spec, frame, ctx), spec.name)


def _require(frame: FlowFrame | None) -> FlowFrame:
    if frame is None:
        raise RuntimeError("no flow in progress")
    return frame


def _named_slot(spec: FlowSpec, text: str) -> SlotSpec | None:
    """A slot the customer names ("change the date")."""
    return next((s for s in spec.slots if re.search(rf"\b{s.name}\b", text, re.I)), None)


def _slot(spec: FlowSpec, name: str) -> SlotSpec:
    return next(s for s in spec.slots if s.name == name)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
