"""The turn log: what analytics need of each turn beyond its events.

A turn's events say what happened; its :class:`TurnRecord` adds when (the turn's clock, so a
replayed or simulated log keeps its own dates), whether a task was in progress, the
milliseconds of each stage (the reply's trace) and the message's vector — the one the turn
computed from the PII-redacted text, stored so ``cxbot suggest`` can cluster real messages
without embedding them again.

:class:`SQLiteTurnLog` keeps the records in a ``turn_records`` table of the SQLite
conversation file, beside the ``events`` table the conversation store writes, and reads
both back turn by turn (:meth:`SQLiteTurnLog.turns`). A turn without a record (an older
file, or the log switched off) is still read, from its events, with the time its events
were stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.conversation.events import Event, event_from_dict
from cxbot.errors import BackendError

if TYPE_CHECKING:
    from cxbot.embeddings import Vector

__all__ = ["LoggedTurn", "SQLiteTurnLog", "TurnLog", "TurnRecord", "VerdictRecord"]


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """One guardrail unit's verdict in a turn, "allow" included (the audit trail)."""

    stage: str
    """``input`` or ``output``."""
    guardrail: str
    action: str
    """``allow``, ``rewrite`` or ``block``."""
    reason: str
    score: float


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One customer turn as the pipeline measured it."""

    conversation_id: str
    turn: int
    """The conversation's turn number (1 for the first message), as its events carry it."""
    at: datetime
    """The turn's clock (timezone-aware or naive as the clock gives it)."""
    text: str
    """The customer's message after PII redaction."""
    in_flow: bool
    """A task (flow) was in progress when the message arrived."""
    trace: dict[str, float]
    """Milliseconds per stage, and ``total``."""
    vector: Vector | None = None
    """The redacted message's embedding (``None`` when the turn never embedded it)."""
    verdicts: tuple[VerdictRecord, ...] = ()
    """Every guardrail verdict of the turn, in the order the units ran."""


@dataclass(frozen=True, slots=True)
class LoggedTurn:
    """A stored turn: its record (``None`` for a turn logged without one) and its events."""

    conversation_id: str
    turn: int
    at: datetime
    events: tuple[Event, ...]
    record: TurnRecord | None


class TurnLog(Protocol):
    """Where the pipeline records each committed turn."""

    def record(self, record: TurnRecord) -> None: ...

    def verdicts(self, conversation_id: str) -> dict[int, tuple[VerdictRecord, ...]]: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS turn_records (
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    at TEXT NOT NULL,
    text TEXT NOT NULL,
    in_flow INTEGER NOT NULL,
    trace TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB,
    verdicts TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (conversation_id, turn)
);
CREATE INDEX IF NOT EXISTS turn_records_at ON turn_records (at);
"""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _stamp(value: datetime) -> str:
    """Sortable text of a time: UTC, ISO 8601 (naive clocks are read as UTC)."""
    return _aware(value).astimezone(UTC).isoformat(timespec="microseconds")


class SQLiteTurnLog:
    """Turn records in the conversation store's SQLite file (table ``turn_records``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = ThreadLocalSQLite(self.path)
        try:
            conn = self._conn()
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(turn_records)")}
            if "verdicts" not in columns:  # a file written before verdicts were kept
                conn.execute(
                    "ALTER TABLE turn_records ADD COLUMN verdicts TEXT NOT NULL DEFAULT '[]'"
                )
        except sqlite3.Error as exc:
            raise BackendError(f"turn log {self.path}: {exc}") from exc

    def record(self, record: TurnRecord) -> None:
        """Store ``record`` (a turn retried after a concurrent update replaces its own)."""
        vector = None
        dim = 0
        if record.vector is not None:
            array = np.asarray(record.vector, dtype=np.float32)
            vector, dim = array.tobytes(), int(array.shape[0])
        try:
            self._conn().execute(
                "INSERT OR REPLACE INTO turn_records "
                "(conversation_id, turn, at, text, in_flow, trace, dim, vector, verdicts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.conversation_id,
                    record.turn,
                    _stamp(record.at),
                    record.text,
                    int(record.in_flow),
                    json.dumps(record.trace, sort_keys=True),
                    dim,
                    vector,
                    json.dumps([_verdict_row(v) for v in record.verdicts]),
                ),
            )
        except sqlite3.Error as exc:
            raise BackendError(f"turn log {self.path}: {exc}") from exc

    def turns(self, since: datetime | None = None) -> Iterator[LoggedTurn]:
        """Every stored turn at or after ``since``, by time, with its events in order."""
        if not self._has_events():
            return
        start = _stamp(since) if since is not None else ""
        rows = self._conn().execute(
            "SELECT e.conversation_id, e.turn, e.data, e.created_at, r.at, r.text, r.in_flow, "
            "r.trace, r.dim, r.vector, r.verdicts FROM events e LEFT JOIN turn_records r "
            "ON r.conversation_id = e.conversation_id AND r.turn = e.turn "
            "ORDER BY e.conversation_id, e.turn, e.seq"
        )
        pending: list[LoggedTurn] = []
        key: tuple[str, int] | None = None
        events: list[Event] = []
        first: tuple[object, ...] = ()
        for row in rows:
            if key != (row[0], row[1]):
                if key is not None:
                    pending.append(_logged(first, events))
                key, events, first = (row[0], row[1]), [], tuple(row)
            events.append(event_from_dict(json.loads(row[2])))
        if key is not None:
            pending.append(_logged(first, events))
        pending = _borrow_times(pending)
        chosen = [t for t in pending if _stamp(t.at) >= start]
        chosen.sort(key=lambda t: (_stamp(t.at), t.conversation_id, t.turn))
        yield from chosen

    def verdicts(self, conversation_id: str) -> dict[int, tuple[VerdictRecord, ...]]:
        """The guardrail verdicts recorded for each turn of ``conversation_id``, by turn
        number (turns logged without a record are absent)."""
        try:
            rows = self._conn().execute(
                "SELECT turn, verdicts FROM turn_records WHERE conversation_id = ? ORDER BY turn",
                (conversation_id,),
            )
            return {int(turn): _verdicts(str(data)) for turn, data in rows}
        except sqlite3.Error as exc:
            raise BackendError(f"turn log {self.path}: {exc}") from exc

    def _has_events(self) -> bool:
        row = (
            self._conn()
            .execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'")
            .fetchone()
        )
        return row is not None

    def close(self) -> None:
        self._conn.close()


def _borrow_times(turns: list[LoggedTurn]) -> list[LoggedTurn]:
    """A turn without a record in a conversation that has records takes the time of the
    conversation's previous recorded turn (else its next): the conversation's own clock,
    not the moment its events were stored."""
    result: list[LoggedTurn] = []
    by_conversation: dict[str, list[LoggedTurn]] = {}
    for turn in turns:  # already ordered by conversation and turn
        by_conversation.setdefault(turn.conversation_id, []).append(turn)
    for conversation in by_conversation.values():
        clock = [t.at if t.record is not None else None for t in conversation]
        known = [c for c in clock if c is not None]
        previous = known[0] if known else None
        for turn, at in zip(conversation, clock, strict=True):
            if at is not None:
                previous = at
                result.append(turn)
            elif previous is not None:
                result.append(replace(turn, at=previous))
            else:
                result.append(turn)
    return result


def _logged(row: Sequence[object], events: list[Event]) -> LoggedTurn:
    conversation_id, turn = str(row[0]), int(row[1])  # type: ignore[call-overload]
    created_at, at = row[3], row[4]
    if at is None:  # no record: the time the events were stored
        when = datetime.fromtimestamp(float(created_at), tz=UTC)  # type: ignore[arg-type]
        return LoggedTurn(conversation_id, turn, when, tuple(events), None)
    when = datetime.fromisoformat(str(at))
    blob, dim = row[9], int(row[8])  # type: ignore[call-overload]
    vector = (
        np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        if isinstance(blob, bytes) and dim
        else None
    )
    record = TurnRecord(
        conversation_id=conversation_id,
        turn=turn,
        at=when,
        text=str(row[5]),
        in_flow=bool(row[6]),
        trace={str(k): float(v) for k, v in json.loads(str(row[7])).items()},
        vector=vector,
        verdicts=_verdicts(str(row[10])),
    )
    return LoggedTurn(conversation_id, turn, when, tuple(events), record)


def _verdict_row(verdict: VerdictRecord) -> list[object]:
    return [verdict.stage, verdict.guardrail, verdict.action, verdict.reason, verdict.score]


def _verdicts(data: str) -> tuple[VerdictRecord, ...]:
    return tuple(
        VerdictRecord(str(stage), str(name), str(action), str(reason), float(score))
        for stage, name, action, reason, score in json.loads(data)
    )
