"""Evaluators: one per kind of expectation; each turns (expectation, turn outcome) into checks.

A run is given its evaluators (``default_evaluators()`` unless the caller passes others);
there is no global registry. Each check feeds one metric: the metric's value is the share
of its checks that passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cxbot.conversation.events import GuardrailTriggered, UserUttered
from cxbot.evals.suite import Expect
from cxbot.types import Reply

__all__ = [
    "Check",
    "Evaluator",
    "TurnOutcome",
    "check_turn",
    "default_evaluators",
]

NONE = "(none)"
"""How an out-of-scope prediction (no intent) is written in reports."""


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What an evaluator may look at after a turn."""

    reply: Reply
    slots: Mapping[str, str] = field(default_factory=dict)
    dont_know_text: str = ""

    @property
    def confidence(self) -> float:
        said = [e for e in self.reply.events if isinstance(e, UserUttered)]
        return said[-1].confidence if said else 0.0


@dataclass(frozen=True, slots=True)
class Check:
    evaluator: str
    metric: str
    passed: bool
    expected: str
    got: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "evaluator": self.evaluator,
            "metric": self.metric,
            "passed": self.passed,
            "expected": self.expected,
            "got": self.got,
        }


class Evaluator(Protocol):
    name: str

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]: ...


def _check(name: str, metric: str, expected: object, got: object, passed: bool) -> Check:
    return Check(name, metric, passed, str(expected), str(got))


class RouteEvaluator:
    name = "route"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        if expect.route is None:
            return []
        got = outcome.reply.route
        return [_check(self.name, "route_accuracy", expect.route, got, got == expect.route)]


class IntentEvaluator:
    name = "intent"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        got = outcome.reply.intent or NONE
        checks = []
        if expect.intent is not None:
            checks.append(
                _check(self.name, "intent_accuracy", expect.intent, got, got == expect.intent)
            )
        if expect.out_of_scope is not None:
            wanted = NONE if expect.out_of_scope else "an intent"
            passed = (got == NONE) == expect.out_of_scope
            checks.append(_check(self.name, "intent_accuracy", wanted, got, passed))
        return checks


class SlotEvaluator:
    name = "slots"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        return [
            _check(
                self.name,
                "slot_accuracy",
                f"{slot}={value}",
                f"{slot}={outcome.slots.get(slot)}",
                outcome.slots.get(slot) == value,
            )
            for slot, value in expect.slots.items()
        ]


class CitationEvaluator:
    name = "citations"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        sources = [c.source for c in outcome.reply.citations]
        return [
            _check(self.name, "citation_recall", source, sources, source in sources)
            for source in expect.cites
        ]


class ContentEvaluator:
    name = "content"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        text = outcome.reply.text.lower()
        short = (
            outcome.reply.text if len(outcome.reply.text) <= 160 else outcome.reply.text[:157] + "…"
        )
        checks = [
            _check(self.name, "content_pass_rate", f"contains {s!r}", short, s.lower() in text)
            for s in expect.contains
        ]
        checks += [
            _check(self.name, "content_pass_rate", f"lacks {s!r}", short, s.lower() not in text)
            for s in expect.not_contains
        ]
        return checks


class GuardrailEvaluator:
    name = "guardrail"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        if expect.guardrail is None:
            return []
        verdicts = {
            (e.guardrail, e.action)
            for e in outcome.reply.events
            if isinstance(e, GuardrailTriggered)
        }
        wanted = expect.guardrail
        if wanted.action == "allow":
            passed = not any(name == wanted.name and action != "allow" for name, action in verdicts)
        else:
            passed = (wanted.name, wanted.action) in verdicts
        got = sorted(f"{n}:{a}" for n, a in verdicts) or "no verdict"
        return [
            _check(self.name, "guardrail_accuracy", f"{wanted.name}:{wanted.action}", got, passed)
        ]


class HandoffEvaluator:
    name = "handoff"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        summary = outcome.reply.handoff
        checks = []
        if expect.handoff is not None:
            got = summary is not None
            checks.append(
                _check(self.name, "handoff_accuracy", expect.handoff, got, got == expect.handoff)
            )
        data: Any = summary.model_dump(mode="json") if summary is not None else None
        for path, wanted in expect.summary.items():
            value = _dig(data, path)
            passed = wanted in value if isinstance(value, list) else str(value) == wanted
            checks.append(
                _check(self.name, "summary_field_recall", f"{path}={wanted}", value, passed)
            )
        return checks


class DontKnowEvaluator:
    name = "dont_know"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        if expect.dont_know is None:
            return []
        got = bool(outcome.dont_know_text) and outcome.dont_know_text in outcome.reply.text
        return [
            _check(self.name, "dont_know_accuracy", expect.dont_know, got, got == expect.dont_know)
        ]


class EventEvaluator:
    name = "events"

    def check(self, expect: Expect, outcome: TurnOutcome) -> list[Check]:
        kinds = sorted({e.kind for e in outcome.reply.events})
        return [
            _check(self.name, "event_recall", kind, kinds, kind in kinds) for kind in expect.events
        ]


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def default_evaluators() -> list[Evaluator]:
    return [
        RouteEvaluator(),
        IntentEvaluator(),
        SlotEvaluator(),
        CitationEvaluator(),
        ContentEvaluator(),
        GuardrailEvaluator(),
        HandoffEvaluator(),
        DontKnowEvaluator(),
        EventEvaluator(),
    ]


def check_turn(
    expect: Expect | None, outcome: TurnOutcome, evaluators: Sequence[Evaluator] | None = None
) -> list[Check]:
    """Every check of one turn (empty when the turn has no expectation)."""
    if expect is None:
        return []
    checks: list[Check] = []
    for evaluator in evaluators or default_evaluators():
        try:
            checks += evaluator.check(expect, outcome)
        except Exception as exc:  # a broken evaluator is a failed check, not a crashed run
            checks.append(Check(evaluator.name, "evaluator_errors", False, "no error", repr(exc)))
    return checks
