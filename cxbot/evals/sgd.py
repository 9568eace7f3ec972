"""Baseline dialogue-state tracking on Schema-Guided Dialogue (SGD) data: ``cxbot eval flows``.

Replays the USER turns of each dialogue in order and tracks one dialogue state (active
intent + slot values) for the dialogue's first service, then scores it against the gold
state of every user turn. It is a deliberately simple, rule-based **baseline**, not a
trained tracker:

- Active intent, zero-shot from the schema: each intent is represented by its name split
  into words plus its description (and, with ``train_path``, the training user utterances
  where that intent became active, matched by intent name across services); a user turn
  takes the intent whose nearest text is most similar (cosine). The previous intent is kept
  when the best score is below :data:`INTENT_THRESHOLD` or the turn is a short reply
  ("yes", "no thanks", "thank you, bye"). A user accepting the system's ``OFFER_INTENT``
  switches to the offered intent.
- Categorical slots: a possible value written in the user turn (case-insensitive whole
  words, optional plural, "counselor"/"counsellor"); ``True``/``False`` values are never
  found this way.
- ``appointment_date`` / ``appointment_time``: :func:`cxbot.nlu.entities.extract_entities`
  with the fixed clock :data:`NOW` (1 March 2019, a Friday, which suits the dataset's
  relative dates); values compare after the same normalisation (a value it cannot parse
  compares lower-cased).
- ``city``: capitalised words after "in" in the user turn (not month or weekday names).
- Values of the SYSTEM's latest ``OFFER`` or ``CONFIRM`` (kept across system turns until the
  user rejects them or the system offers again) are copied into the state when the user
  accepts ("yes", "sounds good", "book it", "I'd like to try that"…).
  System ``INFORM`` values (address, phone number) are answers, not the user's goal, and are
  never copied: no gold state in the data holds them.

Limits: names, addresses or phone numbers the user types are not extracted (only accepted
offers fill them); the state is never cleared; only the first service of a dialogue is
tracked; accept/reject detection is a keyword list; no requested-slot tracking.

The report has the format of ``cxbot eval`` (``schema_version`` 1): one case per dialogue,
one turn per user turn with an ``intent`` check (skipped when the gold intent is ``NONE``)
and a ``slots`` check (the whole state), plus ``by_slot`` F1 at the top level.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cxbot.errors import ConfigError
from cxbot.evals.datasets import SGDDialogue, load_sgd_dialogues
from cxbot.evals.evaluators import NONE
from cxbot.evals.runner import single_suite_report
from cxbot.nlu.entities import extract_entities

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder

__all__ = ["INTENT_THRESHOLD", "NOW", "evaluate_dialogues", "normalise_value"]

NOW: Final = datetime(2019, 3, 1, 10, 0)
"""The clock of date and time extraction: Friday 1 March 2019, 10:00."""
INTENT_THRESHOLD: Final = 0.25
"""Below this best cosine score a user turn keeps the previous active intent."""
GOLD_NONE: Final = "NONE"
SUITE: Final = "sgd"

_ENTITY_SLOTS: Final[dict[str, str]] = {"appointment_date": "date", "appointment_time": "time"}
_COPIED_ACTS: Final = frozenset({"OFFER", "CONFIRM"})
_NUMBER_WORDS: Final[dict[str, str]] = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
}  # fmt: skip
_WORD_BEFORE_MERIDIEM: Final = re.compile(
    r"\b(" + "|".join(_NUMBER_WORDS) + r")(\s*)(am|pm|a\.m\.|p\.m\.)", re.IGNORECASE
)
_PART_THEN_HOUR: Final = re.compile(
    r"\b(morning|afternoon|evening)\s+(\d{1,2}(?::\d{2})?)(?!\s*(?:am|pm|a\.m|p\.m|:|\d))",
    re.IGNORECASE,
)
_ACCEPT: Final = re.compile(
    r"\b(yes|yeah|yep|yup|sure|ok|okay|sounds (?:good|great|perfect|fine)|that works|"
    r"works for me|book it|perfect|great|i like|fine|please do|go ahead|let's do|"
    r"i'll take|that's right|that's it|that one|try (?:it|that|him|her)|correct|absolutely|"
    r"definitely)\b",
    re.IGNORECASE,
)
_REJECT: Final = re.compile(
    r"^\W*(no|nope|nah|not)\b|\b(else|another|other|different|instead)\b", re.IGNORECASE
)
_SHORT_WORDS: Final = frozenset(
    [
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "no",
        "nope",
        "nah",
        "thanks",
        "thank",
        "great",
        "perfect",
        "fine",
        "cool",
        "correct",
        "right",
        "good",
        "awesome",
        "alright",
    ]
)
_CLOSING: Final = re.compile(
    r"\b(thank(?:s| you)|that's all|that is all|that will be all|that'll be all|bye|goodbye)\b",
    re.IGNORECASE,
)
_CLOSING_TODAY: Final = re.compile(
    r"\b(?:that'?s|that is|that will be|that'll be|is) (?:all|everything) for today\b",
    re.IGNORECASE,
)
_CITY: Final = re.compile(r"\bin\s+([A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*)*)")
_NOT_CITIES: Final = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "i",
    ]
)


# ---------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class _Service:
    name: str
    intents: tuple[tuple[str, str], ...]
    """(name, description) of every intent."""
    slots: frozenset[str]
    categorical: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        from cxbot.evals.datasets import DatasetMissing

        raise DatasetMissing("dataset file not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None


def _load_schema(path: Path) -> dict[str, _Service]:
    data = _read_json(path)
    if not isinstance(data, list):
        raise ConfigError("expected a JSON list of services", file=path, line=1)
    services: dict[str, _Service] = {}
    try:
        for item in data:
            services[item["service_name"]] = _Service(
                name=item["service_name"],
                intents=tuple((i["name"], i.get("description", "")) for i in item["intents"]),
                slots=frozenset(s["name"] for s in item["slots"]),
                categorical={
                    s["name"]: tuple(s.get("possible_values", ()))
                    for s in item["slots"]
                    if s.get("is_categorical")
                },
            )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"malformed service: missing {exc}", file=path) from None
    return services


def _system_actions(path: Path) -> dict[str, list[list[tuple[str, str, tuple[str, ...]]]]]:
    """Per dialogue id, per turn, the (act, slot, values) of every frame."""
    actions: dict[str, list[list[tuple[str, str, tuple[str, ...]]]]] = {}
    for item in _read_json(path):
        actions[item["dialogue_id"]] = [
            [
                (a["act"], a.get("slot", ""), tuple(a.get("values", ())))
                for frame in turn.get("frames", ())
                for a in frame.get("actions", ())
            ]
            for turn in item["turns"]
        ]
    return actions


def _split_name(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").lower()


def _training_examples(path: Path) -> dict[str, list[str]]:
    """User utterances of TRAIN where the gold active intent changed, by intent name."""
    examples: dict[str, list[str]] = {}
    for dialogue in load_sgd_dialogues(path):
        previous: str | None = None
        for turn in dialogue.turns:
            if turn.speaker != "USER":
                continue
            intent = turn.active_intent
            if intent and intent != GOLD_NONE and intent != previous:
                texts = examples.setdefault(intent, [])
                if turn.utterance not in texts:
                    texts.append(turn.utterance)
            previous = intent
    return examples


# ---------------------------------------------------------------------------- values


def _rewrite_times(text: str) -> str:
    """'three pm' -> '3 pm', 'afternoon 3' -> '3 pm', 'morning 10' -> '10 am'."""
    text = _WORD_BEFORE_MERIDIEM.sub(
        lambda m: _NUMBER_WORDS[m.group(1).lower()] + m.group(2) + m.group(3), text
    )
    return _PART_THEN_HOUR.sub(
        lambda m: m.group(2) + (" am" if m.group(1).lower() == "morning" else " pm"), text
    )


def normalise_value(slot: str, value: str) -> str:
    """Dates ``YYYY-MM-DD`` and times ``HH:MM`` (clock :data:`NOW`), else lower-cased text."""
    kind = _ENTITY_SLOTS.get(slot)
    if kind is not None:
        found = [e for e in extract_entities(_rewrite_times(value), NOW) if e.kind == kind]
        if found:
            return found[0].value
    return " ".join(value.lower().split()).strip(" .,!?")


def _categorical_pattern(value: str) -> re.Pattern[str]:
    body = re.escape(value.lower()).replace("counselor", "counsell?or")
    return re.compile(r"\b" + body + r"s?\b", re.IGNORECASE)


def _slot_updates(service: _Service, utterance: str) -> dict[str, str]:
    """Normalised slot values read off one user utterance."""
    found: dict[str, str] = {}
    for slot, values in service.categorical.items():
        hits = [
            (m.start(), value)
            for value in values
            if value not in ("True", "False")
            for m in [_categorical_pattern(value).search(utterance)]
            if m is not None
        ]
        if hits:
            found[slot] = normalise_value(slot, min(hits)[1])
    rewritten = _rewrite_times(_CLOSING_TODAY.sub("", utterance))
    entities = extract_entities(rewritten, NOW)
    for slot, kind in _ENTITY_SLOTS.items():
        if slot in service.slots:
            times = [e.value for e in entities if e.kind == kind]
            if times:
                found[slot] = times[-1]
    if "city" in service.slots:
        for match in _CITY.finditer(utterance):
            words: list[str] = []
            for word in match.group(1).split():
                words.append(word.rstrip(".,!?"))
                if word[-1] in ".,!?":
                    break
            if words[0].lower() not in _NOT_CITIES:
                found["city"] = normalise_value("city", " ".join(words))
    return found


def _accepts(utterance: str) -> bool:
    return bool(_ACCEPT.search(utterance)) and not _REJECT.search(utterance)


def _short_reply(utterance: str) -> bool:
    words = re.findall(r"[a-z']+", utterance.lower())
    if not words:
        return True
    if len(words) <= 4 and words[0] in _SHORT_WORDS:
        return True
    return bool(_CLOSING.search(utterance)) and len(words) <= 10


def _state_text(state: Mapping[str, Iterable[str]]) -> str:
    return "; ".join(f"{k}={' | '.join(sorted(v))}" for k, v in sorted(state.items()))


# ---------------------------------------------------------------------------- scoring


@dataclass(slots=True)
class _Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def f1(self) -> float:
        return 0.0 if self.tp == 0 else 2 * self.tp / (2 * self.tp + self.fp + self.fn)


def _ratio(part: float, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class _IntentModel:
    """Nearest intent text per service (cosine over L2-normalised vectors)."""

    def __init__(
        self,
        services: Mapping[str, _Service],
        embedder: Embedder,
        examples: Mapping[str, Sequence[str]],
    ) -> None:
        import numpy as np

        self._labels: dict[str, list[str]] = {}
        self._vectors: dict[str, Any] = {}
        for name, service in sorted(services.items()):
            labels: list[str] = []
            texts: list[str] = []
            for intent, description in service.intents:
                for text in [f"{_split_name(intent)}: {description}", *examples.get(intent, ())]:
                    labels.append(intent)
                    texts.append(text)
            self._labels[name] = labels
            self._vectors[name] = (
                embedder.embed_documents(texts) if texts else np.zeros((0, embedder.dimension))
            )

    def classify(self, service: str, vector: Any) -> tuple[str | None, float]:
        labels = self._labels.get(service, [])
        if not labels:
            return None, 0.0
        scores = self._vectors[service] @ vector
        best = int(scores.argmax())
        return labels[best], float(scores[best])


def evaluate_dialogues(
    dialogues_path: Path,
    schema_path: Path,
    embedder: Embedder,
    *,
    train_path: Path | None = None,
) -> dict[str, Any]:
    """Track the state of every dialogue in DIALOGUES and score it; the ``cxbot eval`` report."""
    started = datetime.now(UTC)
    begin = time.perf_counter()
    services = _load_schema(schema_path)
    dialogues = load_sgd_dialogues(dialogues_path)
    actions = _system_actions(dialogues_path)
    examples = _training_examples(train_path) if train_path is not None else {}
    model = _IntentModel(services, embedder, examples)
    user_texts = [t.utterance for d in dialogues for t in d.turns if t.speaker == "USER"]
    user_vectors: Any = embedder.embed_documents(user_texts) if user_texts else []
    setup_seconds = time.perf_counter() - begin

    totals = _Counts()
    by_slot: dict[str, _Counts] = {}
    intent_hits: list[bool] = []
    joint: list[bool] = []
    goal: list[float] = []
    predictions: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    cases_ms: dict[str, float] = {}
    next_vector = 0
    for dialogue in dialogues:
        case_begin = time.perf_counter()
        key = f"{SUITE}/{dialogue.id}"
        turns, next_vector = _replay(
            dialogue,
            services,
            actions.get(dialogue.id, []),
            model,
            user_vectors,
            next_vector,
            key,
            totals=totals,
            by_slot=by_slot,
            intent_hits=intent_hits,
            joint=joint,
            goal=goal,
            predictions=predictions,
        )
        cases.append(
            {
                "key": key,
                "suite": SUITE,
                "id": dialogue.id,
                "title": "",
                "tags": sorted(dialogue.services),
                "passed": all(c["passed"] for t in turns for c in t["checks"]),
                "error": None,
                "turns": turns,
            }
        )
        cases_ms[key] = round((time.perf_counter() - case_begin) * 1000, 1)

    jga = _ratio(sum(joint), len(joint))
    metrics = {
        "average_goal_accuracy": _ratio(sum(goal), len(goal)),
        "intent_accuracy": _ratio(sum(intent_hits), len(intent_hits)),
        "joint_goal_accuracy": jga,
        "pass_rate": jga,
        "slot_f1": round(totals.f1(), 4),
    }
    return single_suite_report(
        suite=SUITE,
        project=SUITE,
        started=started,
        seconds=time.perf_counter() - begin,
        cases=cases,
        metrics=metrics,
        predictions=predictions,
        timings={"setup_seconds": round(setup_seconds, 2), "cases_ms": cases_ms},
        config={
            "clock": NOW.isoformat(),
            "intent_threshold": INTENT_THRESHOLD,
            "train_examples": sum(len(v) for v in examples.values()),
            "user_turns": len(joint),
        },
        by_slot={
            slot: {
                "f1": round(c.f1(), 4),
                "precision": _ratio(c.tp, c.tp + c.fp),
                "recall": _ratio(c.tp, c.tp + c.fn),
                "support": c.tp + c.fn,
            }
            for slot, c in sorted(by_slot.items())
        },
    )


def _replay(
    dialogue: SGDDialogue,
    services: Mapping[str, _Service],
    actions: Sequence[Sequence[tuple[str, str, tuple[str, ...]]]],
    model: _IntentModel,
    vectors: Any,
    next_vector: int,
    key: str,
    *,
    totals: _Counts,
    by_slot: dict[str, _Counts],
    intent_hits: list[bool],
    joint: list[bool],
    goal: list[float],
    predictions: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], int]:
    service_name = dialogue.services[0] if dialogue.services else ""
    service = services.get(service_name, _Service(service_name, (), frozenset()))
    intent: str | None = None
    confidence = 0.0
    state: dict[str, str] = {}
    turns: list[dict[str, Any]] = []
    previous_acts: Sequence[tuple[str, str, tuple[str, ...]]] = ()
    offered: dict[str, str] = {}  # the system's latest OFFER/CONFIRM values, until rejected
    for index, turn in enumerate(dialogue.turns):
        if turn.speaker != "USER":
            previous_acts = actions[index] if index < len(actions) else ()
            latest = {
                slot: values[0]
                for act, slot, values in previous_acts
                if act in _COPIED_ACTS and slot in service.slots and values
            }
            if latest:
                offered = latest
            continue
        text = turn.utterance
        best, score = model.classify(service.name, vectors[next_vector])
        next_vector += 1
        accepted = _accepts(text)
        offered_intents = [
            v for act, _, values in previous_acts if act == "OFFER_INTENT" for v in values
        ]
        if accepted and offered_intents:
            intent, confidence = offered_intents[0], 1.0  # a rule, not a similarity
        elif intent is None or (score >= INTENT_THRESHOLD and not _short_reply(text)):
            intent, confidence = best, score
        if accepted:
            state.update({slot: normalise_value(slot, v) for slot, v in offered.items()})
        elif _REJECT.search(text):
            offered = {}
        state.update(_slot_updates(service, text))
        previous_acts = ()

        gold = {
            slot: {normalise_value(slot, v) for v in values}
            for slot, values in turn.slot_values.items()
            if values
        }
        hits = {slot for slot, value in state.items() if value in gold.get(slot, ())}
        totals.tp += len(hits)
        totals.fp += len(state) - len(hits)
        totals.fn += len(gold) - len(hits)
        for slot in set(state) | set(gold):
            counts = by_slot.setdefault(slot, _Counts())
            if slot in hits:
                counts.tp += 1
            else:
                counts.fp += slot in state
                counts.fn += slot in gold
        slots_ok = len(hits) == len(gold) == len(state)
        joint.append(slots_ok)
        if gold:
            goal.append(len(hits) / len(gold))
        checks: list[dict[str, Any]] = []
        gold_intent = turn.active_intent or GOLD_NONE
        shown = intent or NONE
        if gold_intent != GOLD_NONE:
            intent_ok = intent == gold_intent
            intent_hits.append(intent_ok)
            checks.append(
                {
                    "evaluator": "intent",
                    "metric": "intent_accuracy",
                    "passed": intent_ok,
                    "expected": gold_intent,
                    "got": shown,
                }
            )
            predictions.append(
                {
                    "case": key,
                    "gold": gold_intent,
                    "predicted": shown,
                    "confidence": round(confidence, 4),
                }
            )
        checks.append(
            {
                "evaluator": "slots",
                "metric": "joint_goal_accuracy",
                "passed": slots_ok,
                "expected": _state_text(gold),
                "got": _state_text({k: [v] for k, v in state.items()}),
            }
        )
        reply = next(
            (t.utterance for t in dialogue.turns[index + 1 :] if t.speaker == "SYSTEM"), ""
        )
        turns.append(
            {
                "user": text,
                "reply": reply,
                "route": None,
                "intent": intent,
                "confidence": round(confidence, 4),
                "citations": [],
                "handoff": False,
                "checks": checks,
            }
        )
    return turns, next_vector
