"""``cxbot eval handoff``: scripted conversations against the handoff triggers and summary.

Each conversation (``evals/<project>/handoff/conversations.yml``; ``.yml`` so the suite
loader, which reads ``evals/**/*.yaml``, leaves it alone) gives the customer's turns, an
optional customer id and clock, and the outcome: ``handoff: false`` or the reason, queue and
summary fields. Every conversation runs on its own stores through the real pipeline.

Metrics: trigger precision and recall (a handoff counts when its reason is the expected
one), overall and per reason; queue accuracy; summary field recall (each expected field —
intent, slots, customer id, open question, topic… — present with the expected value).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cxbot._yaml import load_yaml_model
from cxbot.evals.suite import DEFAULT_CLOCK
from cxbot.handoff.triggers import HANDOFF_REASONS, HandoffReason

if TYPE_CHECKING:
    from cxbot.assistant import Assistant
    from cxbot.handoff.summary import HandoffSummary

__all__ = [
    "ConversationFile",
    "HandoffConversation",
    "HandoffExpect",
    "evaluate_handoffs",
    "load_conversations",
    "summary_line",
]

CONVERSATIONS_FILE = "handoff/conversations.yml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HandoffExpect(_Model):
    """The expected outcome of one conversation."""

    handoff: bool = Field(description="Whether the conversation must be handed over.")
    reason: HandoffReason | None = Field(None, description="The trigger that must fire.")
    queue: str | None = Field(None, description="The queue it must go to.")
    turn: int | None = Field(
        None, ge=1, description="The turn (1-based) the handoff happens on (default: the last)."
    )
    summary: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Summary fields that must hold: intent, customer_id, open_question, topic, "
            "after_hours, flow, sentiment (label), slots.<name>."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> HandoffExpect:
        if self.handoff and self.reason is None:
            raise ValueError("a conversation that hands over needs its 'reason'")
        if not self.handoff and (self.reason or self.queue or self.summary):
            raise ValueError("'handoff: false' takes no reason, queue or summary")
        return self


class HandoffConversation(_Model):
    id: str = Field(description="Conversation id, unique in the file.")
    title: str = Field("", description="What the conversation shows.")
    customer_id: str | None = Field(None, description="Signed-in customer, if any.")
    authenticated: bool = Field(
        True,
        description="Whether the caller authenticated customer_id; false = it must be verified.",
    )
    clock: datetime | None = Field(None, description="Fixed clock (default: the file's).")
    turns: tuple[str, ...] = Field(min_length=1, description="The customer's messages.")
    expect: HandoffExpect


class ConversationFile(_Model):
    clock: datetime = Field(DEFAULT_CLOCK, description="Clock of conversations that set none.")
    handoff: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the project's handoff config for this run (e.g. hours).",
    )
    conversations: tuple[HandoffConversation, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ConversationFile:
        ids = [c.id for c in self.conversations]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"conversation ids repeat: {', '.join(repeated)}")
        return self


def load_conversations(path: Path) -> ConversationFile:
    return load_yaml_model(path, ConversationFile)


def _field(summary: HandoffSummary, name: str) -> Any:
    if name.startswith("slots."):
        return summary.slots.get(name.removeprefix("slots."))
    if name == "customer_id":
        return summary.customer.id if summary.customer else None
    if name == "sentiment":
        return summary.sentiment.label if summary.sentiment else None
    return getattr(summary, name, None)


def _run_one(
    bot: Assistant, conversation: HandoffConversation, clock: datetime, storage: Path
) -> dict[str, Any]:
    from cxbot.testing import FixedClock

    twin = bot.isolated(storage, clock=FixedClock(conversation.clock or clock))
    try:
        handoff_turn: int | None = None
        summary: HandoffSummary | None = None
        routes: list[str] = []
        for number, text in enumerate(conversation.turns, start=1):
            reply = twin.respond(
                conversation.id,
                text,
                customer_id=conversation.customer_id,
                authenticated=conversation.authenticated,
            )
            routes.append(reply.route)
            if reply.handoff is not None and summary is None:
                summary, handoff_turn = reply.handoff, number
    finally:
        twin.close()
    expect = conversation.expect
    fields: dict[str, dict[str, Any]] = {}
    for name, wanted in expect.summary.items():
        got = _field(summary, name) if summary is not None else None
        fields[name] = {"expected": wanted, "got": got, "ok": got == wanted}
    reason = summary.trigger if summary is not None else None
    wanted_turn = expect.turn or len(conversation.turns)
    reason_ok = reason == expect.reason and (
        summary is None or not expect.handoff or handoff_turn == wanted_turn
    )
    return {
        "id": conversation.id,
        "expected": {"handoff": expect.handoff, "reason": expect.reason, "queue": expect.queue},
        "got": {
            "handoff": summary is not None,
            "reason": reason,
            "queue": summary.queue if summary else None,
            "turn": handoff_turn,
        },
        "reason_ok": reason_ok,
        "queue_ok": expect.queue is None or (summary is not None and summary.queue == expect.queue),
        "fields": fields,
        "routes": routes,
        "summary": summary.model_dump(mode="json") if summary is not None else None,
    }


def _ratio(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 1.0


def _scores(results: Sequence[Mapping[str, Any]], reason: str | None) -> dict[str, Any]:
    def picked(side: str, r: Mapping[str, Any]) -> bool:
        got = r[side]["reason"]
        return got is not None if reason is None else got == reason

    predicted = [r for r in results if picked("got", r)]
    expected = [r for r in results if picked("expected", r)]
    hits = [r for r in predicted if r["reason_ok"] and r["expected"]["reason"] is not None]
    return {
        "precision": _ratio(len(hits), len(predicted)),
        "recall": _ratio(len(hits), len(expected)),
        "predicted": len(predicted),
        "expected": len(expected),
        "correct": len(hits),
    }


def evaluate_handoffs(
    bot: Assistant,
    conversations: ConversationFile,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every conversation on isolated stores; the report has ``metrics`` (trigger
    precision/recall, queue accuracy, summary field recall), ``by_reason`` and one entry per
    conversation with what was expected and what happened."""
    from cxbot.config import HandoffConfig

    if conversations.handoff:
        merged = {**bot.config.handoff.model_dump(), **conversations.handoff}
        config = bot.config.model_copy(update={"handoff": HandoffConfig.model_validate(merged)})
        bot = bot.with_config(config)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cxbot-eval-handoff-") as tmp:
        for index, conversation in enumerate(conversations.conversations):
            if progress is not None:
                progress(conversation.id)
            storage = Path(tmp) / f"{index:03d}"
            results.append(_run_one(bot, conversation, conversations.clock, storage))
    overall = _scores(results, None)
    by_reason = {reason: _scores(results, reason) for reason in HANDOFF_REASONS}
    checks = [f for r in results for f in r["fields"].values()]
    by_field: Counter[str] = Counter()
    field_hits: Counter[str] = Counter()
    for r in results:
        for name, check in r["fields"].items():
            key = "slots" if name.startswith("slots.") else name
            by_field[key] += 1
            field_hits[key] += bool(check["ok"])
    handed = [r for r in results if r["expected"]["queue"] is not None and r["reason_ok"]]
    metrics = {
        "trigger_precision": overall["precision"],
        "trigger_recall": overall["recall"],
        "summary_field_recall": _ratio(sum(bool(c["ok"]) for c in checks), len(checks)),
        "queue_accuracy": _ratio(sum(bool(r["queue_ok"]) for r in handed), len(handed)),
        "no_handoff_accuracy": _ratio(
            sum(1 for r in results if not r["expected"]["handoff"] and not r["got"]["handoff"]),
            sum(1 for r in results if not r["expected"]["handoff"]),
        ),
    }
    return {
        "kind": "handoff",
        "conversations": len(results),
        "metrics": metrics,
        "by_reason": {k: v for k, v in by_reason.items() if v["expected"] or v["predicted"]},
        "by_field": {k: _ratio(field_hits[k], n) for k, n in sorted(by_field.items())},
        "results": results,
        "failures": [
            r["id"]
            for r in results
            if not r["reason_ok"]
            or not r["queue_ok"]
            or not all(c["ok"] for c in r["fields"].values())
        ],
    }


def summary_line(report: Mapping[str, Any]) -> str:
    m = report["metrics"]
    return (
        f"handoff: {report['conversations']} conversations, trigger precision "
        f"{m['trigger_precision']:.1%}, recall {m['trigger_recall']:.1%}, summary field recall "
        f"{m['summary_field_recall']:.1%}, queue accuracy {m['queue_accuracy']:.1%}, "
        f"no-handoff accuracy {m['no_handoff_accuracy']:.1%}"
    )
