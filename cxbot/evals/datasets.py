"""Loaders of external eval datasets: intent CSV, retrieval corpus and queries (JSONL),
labelled guardrail messages (JSONL), Schema-Guided Dialogue dialogues (JSON).

Every row is validated; a bad row names the file and line. Dataset files stay outside the
project: :func:`dataset_root` finds them through ``CXBOT_DATASETS`` or ``../shared/datasets``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxbot.errors import ConfigError

__all__ = [
    "CorpusDoc",
    "DatasetMissing",
    "GuardrailExample",
    "IntentExample",
    "RetrievalQuery",
    "SGDDialogue",
    "SGDTurn",
    "dataset_root",
    "load_corpus",
    "load_guardrail_examples",
    "load_intent_csv",
    "load_queries",
    "load_sgd_dialogues",
]


class DatasetMissing(ConfigError):
    """An external dataset is not on this machine."""


def dataset_root(project: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """``$CXBOT_DATASETS``, else ``../shared/datasets`` next to the project, if it exists."""
    env = os.environ if env is None else env
    candidates = [Path(env["CXBOT_DATASETS"])] if env.get("CXBOT_DATASETS") else []
    base = (project or Path.cwd()).resolve()
    candidates += [base.parent / "shared" / "datasets", base / "datasets"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetMissing(
        "no dataset folder found",
        file=candidates[0],
        fix="set CXBOT_DATASETS to the folder holding banking77/ and sgd-services/",
    )


@dataclass(frozen=True, slots=True)
class IntentExample:
    text: str
    label: str


@dataclass(frozen=True, slots=True)
class CorpusDoc:
    id: str
    title: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetrievalQuery:
    id: str
    question: str
    gold_ids: tuple[str, ...]
    context: tuple[str, ...] = ()
    """Earlier turns, each prefixed ``"U: "`` (customer) or ``"S: "`` (assistant)."""
    standalone: str = ""
    """A follow-up written out without its context (to compare recall with and without)."""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GuardrailExample:
    text: str
    label: Literal["attack", "benign"]
    source: str = ""
    category: str = ""


@dataclass(frozen=True, slots=True)
class SGDTurn:
    speaker: Literal["USER", "SYSTEM"]
    utterance: str
    active_intent: str | None = None
    slot_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    requested_slots: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SGDDialogue:
    id: str
    services: tuple[str, ...]
    turns: tuple[SGDTurn, ...]


class _Row(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _CorpusRow(_Row):
    id: str = Field(min_length=1)
    title: str = ""
    text: str = Field(min_length=1)


class _QueryRow(_Row):
    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    gold_ids: list[str] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)
    standalone: str = ""
    tags: list[str] = Field(default_factory=list)


class _GuardrailRow(_Row):
    text: str = Field(min_length=1)
    label: Literal["attack", "benign", "offtopic", "abuse", "inscope", "frustrated"] | None = None
    source: str = ""
    category: str = ""


# Labels of the scope and abuse sets: what a guardrail should block, and what it should pass.
_SHOULD_BLOCK = frozenset({"attack", "offtopic", "abuse"})


def _open(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetMissing("dataset file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", file=path) from None


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(_open(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=number) from None


def _row(model: type[_Row], data: Any, path: Path, line: int) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(row)"
        raise ConfigError(f"{where}: {first['msg']}", file=path, line=line) from None


def load_intent_csv(path: Path) -> list[IntentExample]:
    """Rows of ``text,category`` (``label`` is accepted for ``category``)."""
    rows = list(csv.reader(_open(path).splitlines()))
    if not rows:
        raise ConfigError("empty CSV", file=path, line=1)
    header = [h.strip().lower() for h in rows[0]]
    label_column = "category" if "category" in header else "label"
    if "text" not in header or label_column not in header:
        raise ConfigError(
            f"header must name 'text' and 'category' columns, found {rows[0]}", file=path, line=1
        )
    text_at, label_at = header.index("text"), header.index(label_column)
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) <= max(text_at, label_at) or not row[text_at].strip():
            raise ConfigError("row lacks text or category", file=path, line=number)
        examples.append(IntentExample(row[text_at].strip(), row[label_at].strip()))
    return examples


def load_corpus(path: Path) -> list[CorpusDoc]:
    docs = []
    for line, data in _jsonl(path):
        row = _row(_CorpusRow, data, path, line)
        extra = {k: v for k, v in data.items() if k not in ("id", "title", "text")}
        docs.append(CorpusDoc(row.id, row.title, row.text, extra))
    return docs


def load_queries(path: Path) -> list[RetrievalQuery]:
    queries = []
    for line, data in _jsonl(path):
        row = _row(_QueryRow, data, path, line)
        bad = [c for c in row.context if not c.startswith(("U: ", "S: "))]
        if bad:
            raise ConfigError(
                f"context turns must start with 'U: ' or 'S: ', got {bad[0]!r}",
                file=path,
                line=line,
            )
        queries.append(
            RetrievalQuery(
                row.id,
                row.question,
                tuple(row.gold_ids),
                tuple(row.context),
                row.standalone,
                tuple(row.tags),
            )
        )
    return queries


def load_guardrail_examples(
    path: Path, *, label: Literal["attack", "benign"] | None = None
) -> list[GuardrailExample]:
    """JSONL of ``{"text", "label"?, "source"?, "category"?}``; ``label`` applies to rows
    that carry none. ``offtopic`` and ``abuse`` rows count as attacks (to be blocked),
    ``inscope`` and ``frustrated`` rows as benign."""
    examples = []
    for line, data in _jsonl(path):
        row = _row(_GuardrailRow, data, path, line)
        given = row.label or label
        if given is None:
            raise ConfigError("row has no label and none was given", file=path, line=line)
        chosen: Literal["attack", "benign"] = "attack" if given in _SHOULD_BLOCK else "benign"
        examples.append(GuardrailExample(row.text, chosen, row.source, row.category or given))
    return examples


def load_sgd_dialogues(path: Path) -> list[SGDDialogue]:
    """Schema-Guided Dialogue dialogues (a JSON list); user turns carry the dialogue state."""
    try:
        data = json.loads(_open(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, list):
        raise ConfigError("expected a JSON list of dialogues", file=path, line=1)
    dialogues = []
    for item in data:
        try:
            turns = []
            for turn in item["turns"]:
                state = next((f["state"] for f in turn["frames"] if "state" in f), None)
                turns.append(
                    SGDTurn(
                        speaker=turn["speaker"],
                        utterance=turn["utterance"],
                        active_intent=state["active_intent"] if state else None,
                        slot_values={
                            k: tuple(v) for k, v in (state or {}).get("slot_values", {}).items()
                        },
                        requested_slots=tuple((state or {}).get("requested_slots", ())),
                    )
                )
            dialogues.append(
                SGDDialogue(item["dialogue_id"], tuple(item["services"]), tuple(turns))
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"dialogue {item.get('dialogue_id', '?') if isinstance(item, dict) else '?'} "
                f"is malformed: missing {exc}",
                file=path,
            ) from None
    return dialogues
