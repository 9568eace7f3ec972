"""Groundedness eval (``cxbot eval grounding``): how many unsupported sentences of knowledge
answers the grounding guardrail flags, and how many supported ones it flags by mistake.

Each case of ``evals/*/grounding/cases.jsonl`` is a question, the passages an answer cites
(real chunks of the project's knowledge, with their headings) and the answer's sentences,
each labelled supported or not; unsupported ones carry a ``kind`` (``number``: a changed
amount, date or count; ``product``: a wrong product or address; ``policy``: an invented
rule; ``claim``: a plausible statement the passage does not make; ``offtopic``). A case's
``split`` (``tune`` or ``test``) says whether the guardrail's weights were fitted on it:
the report gives the rates on each half and on the whole set, per kind, and a sweep of the
risk threshold. Every case is also screened as one answer (``check``), which counts how
many answers would be kept, trimmed or replaced.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxbot.errors import ConfigError
from cxbot.evals.runner import single_suite_report
from cxbot.guardrails.base import GuardrailContext
from cxbot.guardrails.output.grounding import GroundingGuard, SentenceSupport

__all__ = ["GroundingCase", "evaluate_grounding", "load_grounding_cases"]

SWEEP = tuple(round(-3.0 + 0.5 * i, 1) for i in range(13))
"""Risk thresholds of the sweep (0 is the guardrail's)."""


class _Sentence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str = Field(min_length=1)
    supported: bool
    kind: Literal["number", "product", "policy", "claim", "offtopic"] | None = None


class _Passage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = ""
    chunk: str = ""
    text: str = Field(min_length=1)


class _CaseRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    split: Literal["tune", "test"]
    question: str = Field(min_length=1)
    passages: list[_Passage] = Field(min_length=1)
    sentences: list[_Sentence] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class GroundingCase:
    """One answer to check: its cited passages and its labelled sentences."""

    id: str
    split: Literal["tune", "test"]
    question: str
    passages: tuple[str, ...]
    sentences: tuple[tuple[str, bool, str], ...]
    """(sentence, supported, kind) — kind is "supported" for supported sentences."""

    @property
    def answer(self) -> str:
        return " ".join(text for text, _, _ in self.sentences)


def load_grounding_cases(path: Path) -> list[GroundingCase]:
    """The cases of a ``cases.jsonl`` file; a bad row names the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError("grounding cases not found", file=path) from None
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = _CaseRow.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=number) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(row)"
            raise ConfigError(f"{where}: {first['msg']}", file=path, line=number) from None
        for sentence in row.sentences:
            if sentence.supported == (sentence.kind is not None):
                raise ConfigError(
                    f"{row.id}: an unsupported sentence needs a kind, a supported one none",
                    file=path,
                    line=number,
                )
        cases.append(
            GroundingCase(
                id=row.id,
                split=row.split,
                question=row.question,
                passages=tuple(p.text for p in row.passages),
                sentences=tuple(
                    (s.text, s.supported, s.kind or "supported") for s in row.sentences
                ),
            )
        )
    if not cases:
        raise ConfigError("no grounding cases", file=path)
    return cases


@dataclass(frozen=True, slots=True)
class _Judged:
    case: GroundingCase
    supports: tuple[SentenceSupport, ...]
    action: str


def _flagged(support: SentenceSupport, threshold: float | None = None) -> bool:
    if threshold is None or support.judged_by != "offline" or support.verbatim:
        return not support.supported
    return bool(support.missing_numbers) or support.risk > threshold


def _rates(
    rows: Sequence[tuple[SentenceSupport, bool]], threshold: float | None = None
) -> dict[str, Any]:
    unsupported = [s for s, ok in rows if not ok]
    supported = [s for s, ok in rows if ok]
    caught = sum(_flagged(s, threshold) for s in unsupported)
    false = sum(_flagged(s, threshold) for s in supported)
    return {
        "unsupported": len(unsupported),
        "supported": len(supported),
        "flagged_unsupported": caught,
        "flagged_supported": false,
        "flagged_unsupported_rate": round(caught / len(unsupported), 4) if unsupported else 0.0,
        "flagged_supported_rate": round(false / len(supported), 4) if supported else 0.0,
    }


def evaluate_grounding(guard: GroundingGuard, cases: Sequence[GroundingCase]) -> dict[str, Any]:
    """Flag rates of ``guard`` on ``cases``, overall, per split and per kind, with a sweep."""
    guard.warm_up()
    started = datetime.now(UTC)
    begin = time.perf_counter()
    judged: list[_Judged] = []
    for case in cases:
        supports = guard.assess([text for text, _, _ in case.sentences], case.passages)
        ctx = GuardrailContext(
            now=started, customer_id=None, embed=_no_embedding, passages=case.passages
        )
        judged.append(_Judged(case, tuple(supports), guard.check(case.answer, ctx).action))
    seconds = time.perf_counter() - begin
    rows = [
        (support, ok, kind, j.case.split)
        for j in judged
        for support, (_, ok, kind) in zip(j.supports, j.case.sentences, strict=True)
    ]
    overall = _rates([(s, ok) for s, ok, _, _ in rows])
    by_split = {
        split: _rates([(s, ok) for s, ok, _, sp in rows if sp == split])
        for split in ("tune", "test")
    }
    kinds = sorted({kind for _, _, kind, _ in rows})
    by_kind = {
        kind: {
            "sentences": sum(k == kind for _, _, k, _ in rows),
            "flagged": sum(not s.supported for s, _, k, _ in rows if k == kind),
        }
        for kind in kinds
    }
    sweep = [{"threshold": t, **_rates([(s, ok) for s, ok, _, _ in rows], t)} for t in SWEEP]
    metrics = {
        "flagged_unsupported_rate": overall["flagged_unsupported_rate"],
        "flagged_supported_rate": overall["flagged_supported_rate"],
        "test_flagged_unsupported_rate": by_split["test"]["flagged_unsupported_rate"],
        "test_flagged_supported_rate": by_split["test"]["flagged_supported_rate"],
        "pass_rate": round(
            sum(_case_passed(j) for j in judged) / len(judged) if judged else 0.0, 4
        ),
    }
    return single_suite_report(
        suite="grounding",
        project="grounding",
        started=started,
        seconds=time.perf_counter() - begin,
        cases=[_case_record(j) for j in judged],
        metrics=metrics,
        timings={"check_seconds": round(seconds, 3), "sentences": len(rows)},
        overall=overall,
        by_split=by_split,
        by_kind=by_kind,
        sweep=sweep,
        verdicts=dict(sorted(Counter(j.action for j in judged).items())),
        config={
            "judge": "llm" if guard.chat_model is not None else "offline",
            "settings": {
                name: getattr(guard.settings, name) for name in guard.settings.__dataclass_fields__
            },
        },
    )


def _no_embedding(text: str) -> Any:
    raise AssertionError("the grounding eval embeds no user message")


def _case_passed(judged: _Judged) -> bool:
    return all(
        (not s.supported) == (not ok)
        for s, (_, ok, _) in zip(judged.supports, judged.case.sentences, strict=True)
    )


def _case_record(judged: _Judged) -> dict[str, Any]:
    case = judged.case
    checks = [
        {
            "evaluator": "grounding",
            "metric": kind,
            "passed": s.supported == ok,
            "expected": "supported" if ok else "flagged",
            "got": "supported" if s.supported else "flagged",
        }
        for s, (_, ok, kind) in zip(judged.supports, case.sentences, strict=True)
    ]
    return {
        "key": f"grounding/{case.id}",
        "suite": "grounding",
        "id": case.id,
        "title": case.question,
        "tags": [case.split],
        "passed": _case_passed(judged),
        "error": None,
        "turns": [
            {
                "user": case.question,
                "reply": case.answer,
                "route": "rag",
                "intent": None,
                "confidence": 0.0,
                "citations": [],
                "handoff": False,
                "checks": checks,
            }
        ],
    }
