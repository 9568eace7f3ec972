"""The eval runner: drives the real Assistant through every case and builds the report.

Each case runs in its own conversation with its own calendar and conversation store (so
cases never see each other's bookings) and a fixed clock; models, knowledge and profiles
are shared. Cases run concurrently (``workers``) and are reported in file order, so two
runs with the same inputs give the same report apart from its volatile fields.
"""

from __future__ import annotations

import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.evals.evaluators import (
    NONE,
    Check,
    Evaluator,
    TurnOutcome,
    check_turn,
    default_evaluators,
)
from cxbot.evals.suite import Case, Suite
from cxbot.prompts import ReplyKey

if TYPE_CHECKING:
    from cxbot.assistant import Assistant

__all__ = [
    "SCHEMA_VERSION",
    "VOLATILE_FIELDS",
    "CaseResult",
    "EvalRunner",
    "machine_description",
    "single_suite_report",
]

SCHEMA_VERSION = 1
VOLATILE_FIELDS = ("started_at", "finished_at", "duration_s", "timings", "machine")
"""Report fields that differ between two runs of the same inputs."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's turns, checks and error (if it raised)."""

    suite: Suite
    case: Case
    turns: list[dict[str, Any]]
    checks: list[Check]
    error: str | None
    ms: float

    @property
    def key(self) -> str:
        return f"{self.suite.suite}/{self.case.id}"

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)


def machine_description() -> dict[str, Any]:
    memory = 0.0
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            memory = int(info.readline().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(memory, 1),
    }


class EvalRunner:
    """Runs suites against an assistant and returns the report (a JSON-ready dict)."""

    def __init__(
        self,
        assistant: Assistant,
        *,
        evaluators: Sequence[Evaluator] | None = None,
        workers: int = 2,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> None:
        self.assistant = assistant
        self.evaluators = list(evaluators) if evaluators is not None else default_evaluators()
        self.workers = max(1, workers)
        self.seed = seed
        self.progress = progress

    def run(self, suites: Sequence[Suite]) -> dict[str, Any]:
        started = datetime.now(UTC)
        clock_start = time.perf_counter()
        self.assistant.warm_up()
        jobs = [(suite, case) for suite in suites for case in suite.cases]
        order = list(range(len(jobs)))
        random.Random(self.seed).shuffle(order)  # spread slow suites over the workers
        results: list[CaseResult | None] = [None] * len(jobs)
        done = 0
        with tempfile.TemporaryDirectory(prefix="cxbot-eval-") as scratch:

            def run_one(index: int) -> None:
                nonlocal done
                suite, case = jobs[index]
                results[index] = self.run_case(suite, case, Path(scratch) / f"case-{index}")
                done += 1
                if self.progress is not None:
                    self.progress(f"{suite.suite}/{case.id}", done, len(jobs))

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(run_one, order))
        finished = datetime.now(UTC)
        final = [r for r in results if r is not None]
        return self._report(suites, final, started, finished, time.perf_counter() - clock_start)

    def run_case(self, suite: Suite, case: Case, storage: Path) -> CaseResult:
        """Run one case in its own stores under ``storage``."""
        start = time.perf_counter()
        turns: list[dict[str, Any]] = []
        checks: list[Check] = []
        error: str | None = None
        when = case.clock or suite.clock
        bot = self.assistant.isolated(storage, clock=lambda: when)
        dont_know = bot.deps.prompts.reply(ReplyKey.DONT_KNOW)
        conversation = f"{suite.suite}/{case.id}"
        try:
            for turn in case.dialogue:
                reply = bot.respond(conversation, turn.user, customer_id=case.customer_id)
                frame = bot.state(conversation).flow
                outcome = TurnOutcome(reply, dict(frame.slots) if frame else {}, dont_know)
                turn_checks = check_turn(turn.expect, outcome, self.evaluators)
                checks += turn_checks
                turns.append(_turn_record(turn.user, outcome, turn_checks))
        except Exception as exc:  # a crashing case is recorded, the run goes on
            error = f"{type(exc).__name__}: {exc}"
        finally:
            bot.close()
        return CaseResult(suite, case, turns, checks, error, (time.perf_counter() - start) * 1000)

    def _report(
        self,
        suites: Sequence[Suite],
        results: Sequence[CaseResult],
        started: datetime,
        finished: datetime,
        seconds: float,
    ) -> dict[str, Any]:
        by_suite: dict[str, Any] = {}
        thresholds: list[dict[str, Any]] = []
        for suite in suites:
            mine = [r for r in results if r.suite is suite]
            metrics = _metrics(mine)
            by_suite[suite.suite] = {
                "cases_total": len(mine),
                "cases_passed": sum(r.passed for r in mine),
                "metrics": metrics,
            }
            for metric, minimum in sorted(suite.thresholds.items()):
                value = metrics.get(metric)
                thresholds.append(
                    {
                        "suite": suite.suite,
                        "metric": metric,
                        "min": minimum,
                        "value": value,
                        "passed": value is not None and value >= minimum,
                    }
                )
        return {
            "schema_version": SCHEMA_VERSION,
            "project": self.assistant.config.company,
            "seed": self.seed,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
            "duration_s": round(seconds, 3),
            "machine": machine_description(),
            "timings": {"cases_ms": {r.key: round(r.ms, 1) for r in results}},
            "cases_total": len(results),
            "cases_passed": sum(r.passed for r in results),
            "passed": all(t["passed"] for t in thresholds),
            "metrics": _metrics(results),
            "by_suite": by_suite,
            "thresholds": thresholds,
            "intents": _intents(results),
            "cases": [
                {
                    "key": r.key,
                    "suite": r.suite.suite,
                    "id": r.case.id,
                    "title": r.case.title,
                    "tags": list(r.case.tags),
                    "passed": r.passed,
                    "error": r.error,
                    "turns": r.turns,
                }
                for r in results
            ],
        }


def single_suite_report(
    *,
    suite: str,
    project: str,
    started: datetime,
    seconds: float,
    cases: list[dict[str, Any]],
    metrics: dict[str, float],
    predictions: list[dict[str, Any]] | None = None,
    seed: int = 0,
    timings: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The report of an eval over external data (one suite, no thresholds), in the format
    of :meth:`EvalRunner.run`; ``extra`` adds sections such as ``by_slot`` or ``config``."""
    passed = sum(bool(c["passed"]) for c in cases)
    predictions = predictions or []
    labels = sorted({p["gold"] for p in predictions} | {p["predicted"] for p in predictions})
    return {
        "schema_version": SCHEMA_VERSION,
        "project": project,
        "seed": seed,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(seconds, 3),
        "machine": machine_description(),
        "timings": timings or {},
        "cases_total": len(cases),
        "cases_passed": passed,
        "passed": True,
        "metrics": dict(sorted(metrics.items())),
        "by_suite": {
            suite: {"cases_total": len(cases), "cases_passed": passed, "metrics": metrics}
        },
        **extra,
        "thresholds": [],
        "intents": {"labels": labels, "predictions": predictions},
        "cases": cases,
    }


def _turn_record(user: str, outcome: TurnOutcome, checks: Sequence[Check]) -> dict[str, Any]:
    reply = outcome.reply
    return {
        "user": user,
        "reply": reply.text,
        "route": reply.route,
        "intent": reply.intent,
        "confidence": round(outcome.confidence, 4),
        "citations": [c.source for c in reply.citations],
        "handoff": reply.handoff is not None,
        "checks": [c.as_dict() for c in checks],
    }


def _metrics(results: Sequence[CaseResult]) -> dict[str, float]:
    if not results:
        return {}
    grouped: dict[str, list[bool]] = {}
    for result in results:
        for check in result.checks:
            grouped.setdefault(check.metric, []).append(check.passed)
    metrics = {name: round(sum(v) / len(v), 4) for name, v in sorted(grouped.items())}
    metrics["pass_rate"] = round(sum(r.passed for r in results) / len(results), 4)
    return dict(sorted(metrics.items()))


def _intents(results: Sequence[CaseResult]) -> dict[str, Any]:
    predictions = []
    for result in results:
        for turn in result.turns:
            for check in turn["checks"]:
                if check["evaluator"] != "intent":
                    continue
                gold = check["expected"] if check["expected"] != "an intent" else None
                if gold is None:
                    continue
                predictions.append(
                    {
                        "case": result.key,
                        "gold": gold,
                        "predicted": turn["intent"] or NONE,
                        "confidence": turn["confidence"],
                    }
                )
    labels = sorted({p["gold"] for p in predictions} | {p["predicted"] for p in predictions})
    return {"labels": labels, "predictions": predictions}
