"""A traffic simulator: many conversations replayed through the real assistant, on a fake
clock spread over several weeks, with a tally of what each turn produced.

Conversations come from the project's eval suites (``evals/*.yaml``: intents, knowledge
questions, flows, guardrail attacks, handoffs) and, when the Banking77 dataset is on this
machine, from its customer messages (questions the assistant was not built for). The seed
fixes every choice, so two runs give the same log. The tally (:class:`GroundTruth`) counts
from each :class:`~cxbot.types.Reply` as the caller received it, never from the store:
``cxbot insights`` over the simulated store must report the same figures.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.errors import ConfigError
from cxbot.evals.datasets import load_intent_csv
from cxbot.evals.suite import load_suite
from cxbot.prompts import ReplyKey
from cxbot.testing.clock import FixedClock

if TYPE_CHECKING:
    from cxbot.assistant import Assistant
    from cxbot.types import Reply

__all__ = [
    "GroundTruth",
    "Planned",
    "Script",
    "banking77_scripts",
    "plan",
    "simulate",
    "suite_scripts",
    "week_of",
]

SIM_START = datetime(2026, 10, 5, 0, 0)
"""Monday 5 October 2026: the first day of simulated traffic by default."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Script:
    """What one simulated customer says, turn by turn."""

    source: str
    """``suite:<suite>/<case>`` or ``banking77``."""
    messages: tuple[str, ...]
    customer_id: str | None = None
    label: str | None = None
    """The message's true intent when the source knows it (Banking77's category)."""


@dataclass(frozen=True, slots=True)
class Planned:
    conversation_id: str
    start: datetime
    script: Script


@dataclass
class GroundTruth:
    """The simulator's own count of what the assistant did (from its replies)."""

    seed: int
    conversations: int = 0
    turns: int = 0
    handed_off: int = 0
    contained: int = 0
    handoff_reasons: Counter[str] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    understood_turns: int = 0
    """Turns the NLU read (not blocked before it, not answered by a person)."""
    out_of_scope: int = 0
    retrieval_turns: int = 0
    dont_know: int = 0
    conversations_by_week: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    labels: dict[str, str] = field(default_factory=dict)
    """``conversation_id/turn`` → the true intent of messages whose source knows it."""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            data[item.name] = dict(sorted(value.items())) if isinstance(value, dict) else value
        return data


def week_of(when: datetime) -> str:
    """The ISO week of a time, e.g. ``2026-W41``."""
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def suite_scripts(folder: Path) -> list[Script]:
    """One script per case of every eval suite under ``folder`` (``*.yaml``; YAML files that
    are not suites, such as datasets, are skipped)."""
    scripts = []
    for path in sorted(folder.rglob("*.yaml")):
        try:
            suite = load_suite(path)
        except ConfigError:
            continue
        for case in suite.cases:
            scripts.append(
                Script(
                    source=f"suite:{suite.suite}/{case.id}",
                    messages=tuple(t.user for t in case.dialogue),
                    customer_id=case.customer_id,
                )
            )
    return scripts


def banking77_scripts(csv_path: Path, labels: Sequence[str] | None = None) -> list[Script]:
    """One single-message script per Banking77 row (only ``labels``' rows when given)."""
    wanted = set(labels) if labels is not None else None
    return [
        Script(source="banking77", messages=(row.text,), label=row.label)
        for row in load_intent_csv(csv_path)
        if wanted is None or row.label in wanted
    ]


def plan(
    scripts: Sequence[Script],
    conversations: int,
    *,
    seed: int = 0,
    start: datetime = SIM_START,
    weeks: int = 6,
    extra: Sequence[Script] = (),
    extra_share: float = 0.0,
) -> list[Planned]:
    """``conversations`` conversations in time order: each replays a random script (from
    ``extra`` with probability ``extra_share``), starting on a random day of ``weeks``
    weeks between 08:00 and 20:00."""
    if not scripts and not extra:
        raise ValueError("no scripts to simulate")
    rng = random.Random(seed)
    starts = sorted(
        start + timedelta(days=rng.randrange(weeks * 7), hours=8, seconds=rng.randrange(12 * 3600))
        for _ in range(conversations)
    )
    planned = []
    for number, when in enumerate(starts, start=1):
        pool = extra if extra and (not scripts or rng.random() < extra_share) else scripts
        planned.append(Planned(f"sim-{number:05d}", when, rng.choice(pool)))
    return planned


def simulate(
    assistant: Assistant,
    planned: Sequence[Planned],
    out: Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> GroundTruth:
    """Replay ``planned`` through ``assistant``'s pipeline into a fresh store under ``out``
    (``conversations.sqlite``, ``calendar.sqlite``) and write ``out/truth.json``."""
    out.mkdir(parents=True, exist_ok=True)
    clock = FixedClock(planned[0].start if planned else SIM_START)
    bot = assistant.isolated(out, clock=clock)
    dont_know = bot.deps.prompts.reply(ReplyKey.DONT_KNOW)
    rng = random.Random(seed + 1)
    truth = GroundTruth(seed=seed)
    began = time.perf_counter()
    try:
        for done, item in enumerate(planned, start=1):
            clock.now = item.start
            truth.conversations += 1
            truth.sources[item.script.source.split("/")[0]] += 1
            truth.conversations_by_week[week_of(item.start)] += 1
            handed = False
            for number, message in enumerate(item.script.messages, start=1):
                if number > 1:
                    clock.advance(seconds=rng.randrange(15, 120))
                reply = bot.respond(
                    item.conversation_id, message, customer_id=item.script.customer_id
                )
                _tally(truth, reply, dont_know)
                if item.script.label is not None:
                    truth.labels[f"{item.conversation_id}/{number}"] = item.script.label
                handed = handed or reply.handoff is not None
            truth.handed_off += handed
            if progress is not None:
                progress(done, len(planned))
    finally:
        bot.close()
    truth.contained = truth.conversations - truth.handed_off
    truth.seconds = round(time.perf_counter() - began, 1)
    (out / "truth.json").write_text(
        json.dumps(truth.to_json(), indent=2, sort_keys=True), encoding="utf-8"
    )
    return truth


def _tally(truth: GroundTruth, reply: Reply, dont_know: str) -> None:
    truth.turns += 1
    truth.routes[reply.route] += 1
    if reply.handoff is not None:
        truth.handoff_reasons[reply.handoff.trigger or reply.handoff.reason] += 1
    if "nlu" in reply.trace:
        truth.understood_turns += 1
        if reply.intent is None:
            truth.out_of_scope += 1
    if reply.intent is not None:
        truth.intents[reply.intent] += 1
    if "retrieval" in reply.trace:
        truth.retrieval_turns += 1
        truth.dont_know += dont_know in reply.text
