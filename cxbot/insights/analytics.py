"""Conversation analytics over the turn log: what customers asked and what the assistant did.

:func:`analyse` reads every stored turn (its events and its record, see
:mod:`cxbot.conversation.turns`) and counts, for the period asked:

- containment: conversations resolved without a person (no ``HandoffRequested``), handoffs
  by trigger and queue, and the customer turns it took either way;
- understanding: turns the NLU read, those out of scope (no intent), intents overall and by
  week, replies that did not help (``BotUttered.failed``), and "I don't know" among the
  turns that searched the knowledge base;
- flows: started, completed (by outcome), cancelled, handed over or left, and the step
  (slot or confirmation) where each unfinished one stopped;
- guardrail verdicts by stage, guardrail and action;
- latency percentiles of every stage, from each turn's trace.

The report is a frozen value; ``to_json()`` gives plain data for dashboards.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from cxbot.conversation.events import (
    BotUttered,
    ConfirmationRequested,
    FlowCancelled,
    FlowCompleted,
    FlowStarted,
    GuardrailTriggered,
    HandoffRequested,
    SlotRequested,
    UserUttered,
)
from cxbot.conversation.turns import LoggedTurn

__all__ = [
    "FlowStats",
    "GuardrailCount",
    "InsightsReport",
    "StageLatency",
    "WeekStats",
    "analyse_turns",
    "summary_lines",
]

PERCENTILES = (50, 90, 95, 99)
STAGE_ORDER = ("guardrails", "embedding", "nlu", "flow", "retrieval", "generation", "total")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class FlowStats:
    """One flow's starts and how they ended; ``drop_off``: the step where unfinished runs
    stopped (a slot name, ``confirmation``, or ``start`` before the first question)."""

    flow: str
    started: int
    completed: int
    cancelled: int
    handed_off: int
    abandoned: int
    outcomes: dict[str, int]
    drop_off: dict[str, int]

    @property
    def completion_rate(self) -> float | None:
        return _rate(self.completed, self.started)


@dataclass(frozen=True, slots=True)
class GuardrailCount:
    stage: str
    guardrail: str
    action: str
    count: int


@dataclass(frozen=True, slots=True)
class StageLatency:
    """Milliseconds of one stage over the turns that ran it."""

    stage: str
    turns: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True, slots=True)
class WeekStats:
    """One ISO week (conversations counted in the week of their first turn)."""

    week: str
    conversations: int
    contained: int
    handed_off: int
    turns: int
    understood_turns: int
    out_of_scope: int
    retrieval_turns: int
    dont_know: int
    intents: dict[str, int]

    @property
    def containment_rate(self) -> float | None:
        return _rate(self.contained, self.conversations)

    @property
    def out_of_scope_rate(self) -> float | None:
        return _rate(self.out_of_scope, self.understood_turns)


@dataclass(frozen=True, slots=True)
class InsightsReport:
    """What the conversations of a period show (see the module docstring)."""

    since: datetime | None
    first_turn: datetime | None
    last_turn: datetime | None
    conversations: int
    turns: int
    contained: int
    handed_off: int
    handoffs: int
    handoff_reasons: dict[str, int]
    handoff_queues: dict[str, int]
    understood_turns: int
    out_of_scope: int
    failed_turns: int
    retrieval_turns: int
    dont_know: int
    intents: dict[str, int]
    routes: dict[str, int]
    flows: tuple[FlowStats, ...]
    guardrails: tuple[GuardrailCount, ...]
    turns_to_resolution: float | None
    """Mean customer turns of a contained conversation."""
    turns_to_handoff: float | None
    """Mean customer turns of a conversation up to and including its handoff."""
    latency: tuple[StageLatency, ...]
    weeks: tuple[WeekStats, ...]
    recorded_turns: int
    """Turns with a record (clock, timings, vector); the others count from events alone."""
    notes: tuple[str, ...] = field(default=())

    @property
    def containment_rate(self) -> float | None:
        return _rate(self.contained, self.conversations)

    @property
    def handoff_rate(self) -> float | None:
        return _rate(self.handed_off, self.conversations)

    @property
    def out_of_scope_rate(self) -> float | None:
        return _rate(self.out_of_scope, self.understood_turns)

    @property
    def fallback_rate(self) -> float | None:
        return _rate(self.failed_turns, self.turns)

    @property
    def dont_know_rate(self) -> float | None:
        return _rate(self.dont_know, self.retrieval_turns)

    def guardrail_blocks(self) -> dict[str, int]:
        """Blocks by guardrail name."""
        blocks: Counter[str] = Counter()
        for item in self.guardrails:
            if item.action == "block":
                blocks[item.guardrail] += item.count
        return dict(sorted(blocks.items()))

    def to_json(self) -> dict[str, Any]:
        """Plain data (times as ISO 8601), with the rates next to their counts."""
        data = asdict(self)
        for key in ("since", "first_turn", "last_turn"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value is not None else None
        data["rates"] = {
            "containment": self.containment_rate,
            "handoff": self.handoff_rate,
            "out_of_scope": self.out_of_scope_rate,
            "fallback": self.fallback_rate,
            "dont_know": self.dont_know_rate,
        }
        data["guardrail_blocks"] = self.guardrail_blocks()
        for flow, stats in zip(data["flows"], self.flows, strict=True):
            flow["completion_rate"] = stats.completion_rate
        for week, week_stats in zip(data["weeks"], self.weeks, strict=True):
            week["containment_rate"] = week_stats.containment_rate
            week["out_of_scope_rate"] = week_stats.out_of_scope_rate
        data["notes"] = list(self.notes)
        return data

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- computing ---------------------------------------------------------------------------------


def _week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class _FlowTally:
    started: int = 0
    completed: int = 0
    cancelled: int = 0
    handed_off: int = 0
    abandoned: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    drop_off: Counter[str] = field(default_factory=Counter)


@dataclass
class _WeekTally:
    conversations: int = 0
    contained: int = 0
    handed_off: int = 0
    turns: int = 0
    understood: int = 0
    out_of_scope: int = 0
    retrieval: int = 0
    dont_know: int = 0
    intents: Counter[str] = field(default_factory=Counter)


def _understood(turn: LoggedTurn) -> bool:
    """The NLU read this message (from the record's trace; without a record: an intent was
    found, or the turn was neither blocked at input nor answered by a person)."""
    if turn.record is not None:
        return "nlu" in turn.record.trace
    said = next((e for e in turn.events if isinstance(e, BotUttered)), None)
    blocked = any(
        isinstance(e, GuardrailTriggered) and e.stage == "input" and e.action == "block"
        for e in turn.events
    )
    return said is not None and not blocked and said.route != "handoff"


def _searched(turn: LoggedTurn) -> bool:
    if turn.record is not None:
        return "retrieval" in turn.record.trace
    return any(isinstance(e, BotUttered) and e.route == "rag" for e in turn.events)


def analyse_turns(turns: Iterable[LoggedTurn], since: datetime | None = None) -> InsightsReport:
    """The report of ``turns`` (any order; each conversation's turns are read in order)."""
    by_conversation: dict[str, list[LoggedTurn]] = defaultdict(list)
    for turn in turns:
        by_conversation[turn.conversation_id].append(turn)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    queues: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    guardrails: Counter[tuple[str, str, str]] = Counter()
    flows: dict[str, _FlowTally] = defaultdict(_FlowTally)
    weeks: dict[str, _WeekTally] = defaultdict(_WeekTally)
    timings: dict[str, list[float]] = defaultdict(list)
    resolved_lengths: list[int] = []
    handoff_lengths: list[int] = []
    times: list[datetime] = []
    for conversation in by_conversation.values():
        conversation.sort(key=lambda t: t.turn)
        week = weeks[_week(conversation[0].at)]
        week.conversations += 1
        handed_at: int | None = None
        current: tuple[str, str] | None = None  # (flow, step)
        for number, turn in enumerate(conversation, start=1):
            times.append(turn.at)
            counts["recorded"] += turn.record is not None
            if turn.record is not None:
                for stage, ms in turn.record.trace.items():
                    timings[stage].append(ms)
            customer = any(isinstance(e, UserUttered) for e in turn.events)
            counts["turns"] += customer
            counts["unrecorded"] += customer and turn.record is None
            week.turns += customer
            understood = customer and _understood(turn)
            counts["understood"] += understood
            week.understood += understood
            searched = _searched(turn)
            for event in turn.events:
                match event:
                    case UserUttered(intent=intent) if intent is not None:
                        intents[intent] += 1
                        week.intents[intent] += 1
                    case UserUttered() if understood:
                        counts["out_of_scope"] += 1
                        week.out_of_scope += 1
                    case BotUttered(route=route, failed=failed):
                        routes[route] += 1
                        counts["failed"] += failed
                        if searched:
                            counts["retrieval"] += 1
                            week.retrieval += 1
                            counts["dont_know"] += failed
                            week.dont_know += failed
                    case GuardrailTriggered(stage=stage, guardrail=name, action=action):
                        guardrails[(stage, name, action)] += 1
                    case FlowStarted(flow=flow):
                        if current is not None:
                            flows[current[0]].abandoned += 1
                            flows[current[0]].drop_off[current[1]] += 1
                        flows[flow].started += 1
                        current = (flow, "start")
                    case SlotRequested(slot=slot) if current is not None:
                        current = (current[0], slot)
                    case ConfirmationRequested() if current is not None:
                        current = (current[0], "confirmation")
                    case FlowCompleted(flow=flow, outcome=outcome) if current is not None:
                        flows[flow].completed += 1
                        flows[flow].outcomes[outcome] += 1
                        current = None
                    case FlowCancelled(flow=flow) if current is not None:
                        flows[flow].cancelled += 1
                        current = None
                    case HandoffRequested(reason=reason, queue=queue):
                        counts["handoffs"] += 1
                        reasons[reason] += 1
                        queues[queue] += 1
                        if handed_at is None:
                            handed_at = number
                        if current is not None:
                            flows[current[0]].handed_off += 1
                            flows[current[0]].drop_off[current[1]] += 1
                            current = None
                    case _:
                        pass
        if current is not None:
            flows[current[0]].abandoned += 1
            flows[current[0]].drop_off[current[1]] += 1
        customer_turns = sum(
            any(isinstance(e, UserUttered) for e in t.events) for t in conversation
        )
        if handed_at is None:
            week.contained += 1
            resolved_lengths.append(customer_turns)
        else:
            week.handed_off += 1
            handoff_lengths.append(handed_at)
    contained = len(resolved_lengths)
    notes = []
    if counts["unrecorded"]:
        notes.append(
            "some turns have no record (storage.turn_log off, or stored before it existed): "
            "they count from their events, without timings"
        )
    return InsightsReport(
        since=since,
        first_turn=min(times) if times else None,
        last_turn=max(times) if times else None,
        conversations=len(by_conversation),
        turns=counts["turns"],
        contained=contained,
        handed_off=len(handoff_lengths),
        handoffs=counts["handoffs"],
        handoff_reasons=dict(reasons.most_common()),
        handoff_queues=dict(queues.most_common()),
        understood_turns=counts["understood"],
        out_of_scope=counts["out_of_scope"],
        failed_turns=counts["failed"],
        retrieval_turns=counts["retrieval"],
        dont_know=counts["dont_know"],
        intents=dict(intents.most_common()),
        routes=dict(routes.most_common()),
        flows=tuple(
            FlowStats(
                flow=name,
                started=t.started,
                completed=t.completed,
                cancelled=t.cancelled,
                handed_off=t.handed_off,
                abandoned=t.abandoned,
                outcomes=dict(t.outcomes.most_common()),
                drop_off=dict(t.drop_off.most_common()),
            )
            for name, t in sorted(flows.items())
        ),
        guardrails=tuple(
            GuardrailCount(stage, name, action, n)
            for (stage, name, action), n in sorted(guardrails.items())
        ),
        turns_to_resolution=_mean(resolved_lengths),
        turns_to_handoff=_mean(handoff_lengths),
        latency=_latency(timings),
        weeks=tuple(
            WeekStats(
                week=name,
                conversations=w.conversations,
                contained=w.contained,
                handed_off=w.handed_off,
                turns=w.turns,
                understood_turns=w.understood,
                out_of_scope=w.out_of_scope,
                retrieval_turns=w.retrieval,
                dont_know=w.dont_know,
                intents=dict(w.intents.most_common()),
            )
            for name, w in sorted(weeks.items())
        ),
        recorded_turns=counts["recorded"],
        notes=tuple(notes),
    )


def _mean(values: Sequence[int]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _latency(timings: Mapping[str, list[float]]) -> tuple[StageLatency, ...]:
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    stages = sorted(timings, key=lambda s: (order.get(s, len(order) - 0.5), s))
    result = []
    for stage in stages:
        values = np.asarray(timings[stage], dtype=np.float64)
        p50, p90, p95, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
        result.append(
            StageLatency(
                stage=stage,
                turns=int(values.size),
                mean=round(float(values.mean()), 3),
                p50=round(p50, 3),
                p90=round(p90, 3),
                p95=round(p95, 3),
                p99=round(p99, 3),
                max=round(float(values.max()), 3),
            )
        )
    return tuple(result)


# --- terminal ----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def summary_lines(report: InsightsReport, *, top: int = 10) -> list[str]:
    """A plain-text summary of ``report`` for a terminal."""
    r = report
    period = (
        f"{r.first_turn:%Y-%m-%d} to {r.last_turn:%Y-%m-%d}"
        if r.first_turn is not None and r.last_turn is not None
        else "no turns"
    )
    lines = [
        f"Conversations {r.conversations} · customer turns {r.turns} · {period}",
        f"Containment   {_pct(r.containment_rate)} ({r.contained} resolved without a person)",
        f"Handoff       {_pct(r.handoff_rate)} ({r.handed_off} conversations, "
        f"{r.handoffs} handoffs): " + ", ".join(f"{k} {v}" for k, v in r.handoff_reasons.items()),
        f"Out of scope  {_pct(r.out_of_scope_rate)} ({r.out_of_scope} of {r.understood_turns} "
        "understood turns had no intent)",
        f"Fallback      {_pct(r.fallback_rate)} ({r.failed_turns} replies did not help)",
        f"Don't know    {_pct(r.dont_know_rate)} ({r.dont_know} of {r.retrieval_turns} "
        "knowledge searches)",
        "Turns         "
        + (f"{r.turns_to_resolution:.2f}" if r.turns_to_resolution is not None else "—")
        + " to resolution, "
        + (f"{r.turns_to_handoff:.2f}" if r.turns_to_handoff is not None else "—")
        + " to handoff",
        "Intents       "
        + ", ".join(f"{k} {v}" for k, v in list(r.intents.items())[:top])
        + (f" (+{len(r.intents) - top} more)" if len(r.intents) > top else ""),
    ]
    for flow in r.flows:
        drop = ", ".join(f"{k} {v}" for k, v in flow.drop_off.items()) or "none"
        lines.append(
            f"Flow {flow.flow}: {flow.started} started, {flow.completed} completed "
            f"({_pct(flow.completion_rate)}), {flow.cancelled} cancelled, "
            f"{flow.handed_off} handed off, {flow.abandoned} left; stopped at: {drop}"
        )
    blocks = report.guardrail_blocks()
    lines.append("Guardrail blocks " + (", ".join(f"{k} {v}" for k, v in blocks.items()) or "none"))
    if r.latency:
        lines.append("Latency ms     stage: p50 / p95 / p99 (turns)")
        lines += [
            f"  {s.stage:>12}: {s.p50:.1f} / {s.p95:.1f} / {s.p99:.1f} ({s.turns})"
            for s in r.latency
        ]
    if r.weeks:
        lines.append("Week          conversations · containment · out of scope")
        lines += [
            f"  {w.week}: {w.conversations} · {_pct(w.containment_rate)} · "
            f"{_pct(w.out_of_scope_rate)}"
            for w in r.weeks
        ]
    lines += [f"Note: {n}" for n in r.notes]
    return lines
