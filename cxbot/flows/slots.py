"""Slot values from free text: choices, dates, times, appointments; validation.

Entities come from the NLU stage (already extracted once for the turn); choice slots are
matched on the text against their options and synonyms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cxbot.flows.actions.base import ActionContext
from cxbot.flows.spec import FlowSpec, SlotSpec
from cxbot.types import Entity

__all__ = [
    "Choice",
    "Extracted",
    "Rejected",
    "choices_for",
    "display",
    "extract_slot",
    "past_time",
]


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class Extracted:
    value: str


@dataclass(frozen=True, slots=True)
class Rejected:
    value: str
    reason: str


def choices_for(slot: SlotSpec, ctx: ActionContext) -> list[Choice]:
    if slot.choices is not None:
        return [Choice(c, c) for c in slot.choices]
    match slot.choices_from:
        case "branches":
            return [Choice(b, b) for b in ctx.calendar.branches()]
        case "topics":
            return [Choice(t, t) for t in ctx.calendar.topics()]
        case "upcoming_appointments":
            if ctx.customer_id is None:
                return []
            return [
                Choice(a.id, a.label)
                for a in ctx.calendar.upcoming(ctx.customer_id, ctx.now.replace(tzinfo=None))
            ]
        case None:
            return []


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()) + " "


def _match_choice(slot: SlotSpec, text: str, options: Sequence[Choice]) -> str | None:
    haystack = _words(text)
    hits: list[str] = []
    for option in options:
        names = [option.label, option.value, *slot.synonyms.get(option.value, ())]
        names += [n[:-1] for n in names if len(n) > 4 and n.endswith("s")]  # "returns" ~ "return"
        if any(_words(n) in haystack for n in names):
            hits.append(option.value)
    return hits[0] if len(hits) == 1 else None


def _match_appointment(
    text: str, options: Sequence[Choice], entities: Sequence[Entity]
) -> str | None:
    if len(options) == 1:
        return options[0].value
    haystack = _words(text)
    ordinals = {" first ": 0, " 1st ": 0, " second ": 1, " 2nd ": 1, " third ": 2, " 3rd ": 2}
    for word, index in ordinals.items():
        if word in haystack and index < len(options):
            return options[index].value
    days = {e.value for e in entities if e.kind == "date"}
    scored = []
    for option in options:
        label = _words(option.label)
        score = sum(1 for w in haystack.split() if len(w) > 3 and f" {w} " in label)
        score += sum(3 for d in days if _words(f"{date.fromisoformat(d):%A %-d %B}") in label)
        scored.append((score, option.value))
    scored.sort(reverse=True)
    if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
        return scored[0][1]
    return None


def _validate(slot: SlotSpec, value: str, ctx: ActionContext) -> str | None:
    opening = ctx.calendar.opening()
    today = ctx.now.date()
    for name in slot.validators:
        match name:
            case "future":
                if slot.type == "date" and date.fromisoformat(value) < today:
                    return "that date has already passed"
                horizon = opening.horizon_days
                ahead = (date.fromisoformat(value) - today).days if slot.type == "date" else 0
                if horizon is not None and ahead > horizon:
                    return f"appointments can be booked up to {horizon // 7} weeks ahead"
            case "open_day":
                day = date.fromisoformat(value)
                if slot.type == "date" and day in opening.closed_dates:
                    return "our branches are closed that day (a bank holiday)"
                if slot.type == "date" and not opening.is_open_day(day):
                    return "advisors are not available on that day"
            case "opening_hours":
                if slot.type == "time" and not opening.is_slot_start(time.fromisoformat(value)):
                    return (
                        f"appointments start on the hour between {opening.start:%H:%M} and "
                        f"the last slot before {opening.end:%H:%M}"
                    )
    return None


def extract_slot(
    slot: SlotSpec,
    text: str,
    entities: Sequence[Entity],
    ctx: ActionContext,
    options: Sequence[Choice] | None = None,
) -> Extracted | Rejected | None:
    """The slot's value in this message: extracted, rejected by a validator, or absent."""
    value: str | None
    match slot.type:
        case "date" | "time":
            value = next((e.value for e in entities if e.kind == slot.type), None)
        case "choice":
            value = _match_choice(
                slot, text, options if options is not None else choices_for(slot, ctx)
            )
        case "appointment":
            value = _match_appointment(
                text, options if options is not None else choices_for(slot, ctx), entities
            )
        case "text":
            value = text.strip() or None
    if value is None:
        return None
    reason = _validate(slot, value, ctx)
    return Rejected(value, reason) if reason else Extracted(value)


def past_time(
    spec: FlowSpec, slots: Mapping[str, str], now: datetime, notice_minutes: int = 0
) -> tuple[SlotSpec, Rejected] | None:
    """A ``future`` time slot whose date is today and whose time has already gone."""
    day = next((s for s in spec.slots if s.type == "date" and s.name in slots), None)
    if day is None:
        return None
    now = now.replace(tzinfo=None)
    for slot in spec.slots:
        if slot.type == "time" and "future" in slot.validators and slot.name in slots:
            start = datetime.fromisoformat(f"{slots[day.name]}T{slots[slot.name]}")
            if start <= now:
                return slot, Rejected(slots[slot.name], "that time has already passed")
            if start < now + timedelta(minutes=notice_minutes):
                reason = f"same-day appointments need {notice_minutes // 60} hours' notice"
                return slot, Rejected(slots[slot.name], reason)
    return None


def display(slot: SlotSpec, value: str, options: Sequence[Choice]) -> str:
    """How a slot value reads in a reply."""
    match slot.type:
        case "date":
            return f"{date.fromisoformat(value):%A %-d %B}"
        case "appointment" | "choice":
            return next((o.label for o in options if o.value == value), value)
        case _:
            return value


def now_naive(now: datetime) -> datetime:
    return now.replace(tzinfo=None)
