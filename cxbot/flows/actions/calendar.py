"""Branch advisors' calendar: the ``CalendarBackend`` protocol, its SQLite default, and the
``calendar.*`` flow actions (the Redis calendar for several workers is
:mod:`cxbot.flows.actions.redis_calendar`).

Double booking is impossible by construction: a unique index on (advisor, start) for
booked appointments, and the free advisor is chosen inside the same write transaction
(``BEGIN IMMEDIATE`` takes SQLite's write lock, which holds across the processes of one
host on a local disk, not on a network file system).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.errors import BackendError, ConfigError
from cxbot.flows.actions.base import ActionContext, ActionResult

__all__ = [
    "Appointment",
    "CalendarBackend",
    "CalendarFixture",
    "Opening",
    "SQLiteCalendar",
    "SlotTaken",
    "book",
    "cancel",
    "nearest_free",
    "read_fixture",
    "reschedule",
]


class SlotTaken(BackendError):
    """No advisor is free at that time; ``alternatives`` are the nearest free starts."""

    def __init__(self, alternatives: Sequence[datetime]) -> None:
        self.alternatives = tuple(alternatives)
        super().__init__("no advisor is free at that time")


@dataclass(frozen=True, slots=True)
class Opening:
    """When advisors see customers: the calendar fixture's ``opening`` section."""

    start: time
    end: time
    weekdays: frozenset[int]
    slot_minutes: int
    closed_dates: frozenset[date] = frozenset()
    """Bank holidays and other days every branch is closed."""
    horizon_days: int | None = None
    """How far ahead appointments can be booked (None: no limit)."""
    notice_minutes: int = 0
    """How long before its start a same-day appointment can still be booked."""

    def is_open_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.closed_dates

    def is_slot_start(self, at: time) -> bool:
        minutes = at.hour * 60 + at.minute
        first = self.start.hour * 60 + self.start.minute
        last = self.end.hour * 60 + self.end.minute - self.slot_minutes
        return first <= minutes <= last and (minutes - first) % self.slot_minutes == 0


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    customer_id: str
    advisor: str
    branch: str
    topic: str
    start: datetime

    @property
    def label(self) -> str:
        return f"{self.topic} appointment at {self.branch} on {self.start:%A %-d %B at %H:%M}"


@dataclass(frozen=True, slots=True)
class CalendarFixture:
    """Branches, advisors (id, name, branch, topics), topics and opening hours: what the
    calendar fixture file says, before any appointment."""

    raw: str
    opening: Mapping[str, object]
    branches: tuple[tuple[str, str], ...]
    advisors: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    topics: tuple[str, ...]


def read_fixture(fixture: Path) -> CalendarFixture:
    """Parse a calendar fixture; :class:`~cxbot.errors.ConfigError` naming the file if
    it is missing or malformed."""
    try:
        raw = fixture.read_text(encoding="utf-8")
        data = json.loads(raw)
        return CalendarFixture(
            raw=raw,
            opening={**data["opening"], "slot_minutes": data["slot_minutes"]},
            branches=tuple((b["name"], b.get("address", "")) for b in data["branches"]),
            advisors=tuple(
                (a["id"], a["name"], a["branch"], tuple(a["topics"])) for a in data["advisors"]
            ),
            topics=tuple(data["topics"]),
        )
    except FileNotFoundError:
        raise ConfigError("calendar fixture not found", file=fixture) from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"calendar fixture is malformed: {exc!r}", file=fixture) from None


def opening_of(data: Mapping[str, object]) -> Opening:
    """The :class:`Opening` of a fixture's ``opening`` section (with ``slot_minutes``)."""
    raw: dict[str, Any] = dict(data)
    return Opening(
        start=time.fromisoformat(raw["start"]),
        end=time.fromisoformat(raw["end"]),
        weekdays=frozenset(raw["weekdays"]),
        slot_minutes=int(raw["slot_minutes"]),
        closed_dates=frozenset(date.fromisoformat(d) for d in raw.get("closed_dates", ())),
        horizon_days=raw.get("horizon_days"),
        notice_minutes=int(raw.get("notice_minutes", 0)),
    )


def nearest_free(
    opening: Opening, start: datetime, is_free: Callable[[datetime], bool], count: int = 3
) -> list[datetime]:
    """The nearest ``count`` slot starts after ``start`` on open days (within two weeks)
    for which ``is_free`` holds."""
    found: list[datetime] = []
    step = timedelta(minutes=opening.slot_minutes)
    candidate = start + step
    for _ in range(24 * 60 // opening.slot_minutes * 14):
        if len(found) >= count:
            break
        if (
            opening.is_open_day(candidate.date())
            and opening.is_slot_start(candidate.time())
            and is_free(candidate)
        ):
            found.append(candidate)
        candidate += step
    return found


class CalendarBackend(Protocol):
    """Where appointments with branch advisors are kept."""

    def branches(self) -> list[str]: ...
    def topics(self) -> list[str]: ...
    def opening(self) -> Opening: ...
    def book(
        self, customer_id: str, branch: str, topic: str, start: datetime, *, key: str | None = None
    ) -> Appointment:
        """Book the first free advisor; with ``key``, a second booking with the same key
        returns the first one's appointment instead (a retried turn books once)."""
        ...

    def upcoming(self, customer_id: str, now: datetime) -> list[Appointment]: ...
    def cancel(self, appointment_id: str) -> Appointment: ...
    def reschedule(self, appointment_id: str, start: datetime) -> Appointment: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS branches (name TEXT PRIMARY KEY, address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS advisors (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, branch TEXT NOT NULL, topics TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS appointments (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, advisor_id TEXT NOT NULL,
    branch TEXT NOT NULL, topic TEXT NOT NULL, start TEXT NOT NULL, status TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS one_booking_per_advisor_slot
    ON appointments (advisor_id, start) WHERE status = 'booked';
CREATE TABLE IF NOT EXISTS booking_keys (key TEXT PRIMARY KEY, appointment_id TEXT NOT NULL);
"""


class SQLiteCalendar:
    """Calendar in SQLite, seeded from a JSON fixture of branches and advisors."""

    def __init__(self, path: str | Path, fixture: str | Path | None = None) -> None:
        self.path = Path(path)
        self._conn = ThreadLocalSQLite(self.path)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        if fixture is not None:
            self._seed(Path(fixture))
        row = conn.execute("SELECT value FROM meta WHERE key = 'opening'").fetchone()
        if row is None:
            raise ConfigError(
                "the calendar has no branches or opening hours",
                file=self.path,
                fix="set calendar.fixture in cxbot.yaml to a JSON file of branches and advisors",
            )
        self._opening = opening_of(json.loads(row[0]))

    def _seed(self, fixture: Path) -> None:
        parsed = read_fixture(fixture)
        raw, opening, branches, topics = (
            parsed.raw,
            dict(parsed.opening),
            parsed.branches,
            list(parsed.topics),
        )
        advisors = [
            (i, name, branch, json.dumps(list(t))) for i, name, branch, t in parsed.advisors
        ]
        conn = self._conn()
        if conn.execute("SELECT value FROM meta WHERE key='fixture'").fetchone() == (raw,):
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM branches")
        conn.execute("DELETE FROM advisors")
        conn.executemany("INSERT INTO branches VALUES (?, ?)", branches)
        conn.executemany("INSERT INTO advisors VALUES (?, ?, ?, ?)", advisors)
        for key, value in (("opening", opening), ("topics", topics), ("fixture", None)):
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                (key, raw if value is None else json.dumps(value)),
            )
        conn.execute("COMMIT")

    def branches(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT name FROM branches ORDER BY name")]

    def advisors(self) -> list[str]:
        """Advisors' names (for entity extraction: "can I see Helen?")."""
        rows = self._conn().execute("SELECT name FROM advisors ORDER BY name")
        return [str(r[0]) for r in rows]

    def topics(self) -> list[str]:
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'topics'").fetchone()
        return list(json.loads(row[0])) if row else []

    def opening(self) -> Opening:
        return self._opening

    def _free_advisor(
        self, conn: sqlite3.Connection, branch: str, topic: str, start: datetime
    ) -> str | None:
        for advisor_id, topics in conn.execute(
            "SELECT id, topics FROM advisors WHERE branch = ? ORDER BY id", (branch,)
        ).fetchall():
            if topic not in json.loads(topics):
                continue
            busy = conn.execute(
                "SELECT 1 FROM appointments WHERE advisor_id = ? AND start = ? "
                "AND status = 'booked'",
                (advisor_id, start.isoformat(timespec="minutes")),
            ).fetchone()
            if busy is None:
                return str(advisor_id)
        return None

    def alternatives(
        self, branch: str, topic: str, start: datetime, count: int = 3
    ) -> list[datetime]:
        """The nearest free starts after ``start`` on open days (same day first)."""
        conn = self._conn()
        return nearest_free(
            self._opening,
            start,
            lambda at: self._free_advisor(conn, branch, topic, at) is not None,
            count,
        )

    def book(
        self, customer_id: str, branch: str, topic: str, start: datetime, *, key: str | None = None
    ) -> Appointment:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = self._booked_with(conn, key)
            if done is not None:
                conn.execute("COMMIT")
                return done
            advisor = self._free_advisor(conn, branch, topic, start)
            if advisor is None:
                conn.execute("ROLLBACK")
                raise SlotTaken(self.alternatives(branch, topic, start))
            (count,) = conn.execute("SELECT COUNT(*) FROM appointments").fetchone()
            appointment = Appointment(
                id=f"APT-{count + 1:05d}",
                customer_id=customer_id,
                advisor=advisor,
                branch=branch,
                topic=topic,
                start=start,
            )
            conn.execute(
                "INSERT INTO appointments VALUES (?, ?, ?, ?, ?, ?, 'booked')",
                (
                    appointment.id,
                    customer_id,
                    advisor,
                    branch,
                    topic,
                    start.isoformat(timespec="minutes"),
                ),
            )
            if key is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO booking_keys VALUES (?, ?)", (key, appointment.id)
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendError(f"calendar {self.path}: {exc}") from exc
        return appointment

    def _booked_with(self, conn: sqlite3.Connection, key: str | None) -> Appointment | None:
        if key is None:
            return None
        row = conn.execute(
            "SELECT appointment_id FROM booking_keys WHERE key = ?", (key,)
        ).fetchone()
        return self.get(str(row[0])) if row else None

    def _row(self, row: Sequence[str]) -> Appointment:
        return Appointment(
            id=row[0],
            customer_id=row[1],
            advisor=row[2],
            branch=row[3],
            topic=row[4],
            start=datetime.fromisoformat(row[5]),
        )

    def get(self, appointment_id: str) -> Appointment | None:
        row = (
            self._conn()
            .execute(
                "SELECT id, customer_id, advisor_id, branch, topic, start FROM appointments "
                "WHERE id = ? AND status = 'booked'",
                (appointment_id,),
            )
            .fetchone()
        )
        return self._row(row) if row else None

    def upcoming(self, customer_id: str, now: datetime) -> list[Appointment]:
        rows = self._conn().execute(
            "SELECT id, customer_id, advisor_id, branch, topic, start FROM appointments "
            "WHERE customer_id = ? AND status = 'booked' AND start >= ? ORDER BY start",
            (customer_id, now.isoformat(timespec="minutes")),
        )
        return [self._row(r) for r in rows]

    def cancel(self, appointment_id: str) -> Appointment:
        appointment = self.get(appointment_id)
        if appointment is None:
            raise BackendError(f"no booked appointment {appointment_id}")
        self._conn().execute(
            "UPDATE appointments SET status = 'cancelled' WHERE id = ?", (appointment_id,)
        )
        return appointment

    def reschedule(self, appointment_id: str, start: datetime) -> Appointment:
        old = self.get(appointment_id)
        if old is None:
            raise BackendError(f"no booked appointment {appointment_id}")
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        advisor = (
            old.advisor
            if conn.execute(
                "SELECT 1 FROM appointments WHERE advisor_id = ? AND start = ? "
                "AND status = 'booked'",
                (old.advisor, start.isoformat(timespec="minutes")),
            ).fetchone()
            is None
            else self._free_advisor(conn, old.branch, old.topic, start)
        )
        if advisor is None:
            conn.execute("ROLLBACK")
            raise SlotTaken(self.alternatives(old.branch, old.topic, start))
        conn.execute(
            "UPDATE appointments SET start = ?, advisor_id = ? WHERE id = ?",
            (start.isoformat(timespec="minutes"), advisor, appointment_id),
        )
        conn.execute("COMMIT")
        return Appointment(old.id, old.customer_id, advisor, old.branch, old.topic, start)

    def close(self) -> None:
        self._conn.close()


def _start(slots: Mapping[str, str]) -> datetime:
    return datetime.fromisoformat(f"{slots['date']}T{slots['time']}")


def _values(appointment: Appointment) -> dict[str, str]:
    return {"reference": appointment.id, "appointment": appointment.label}


def _conflict(exc: SlotTaken) -> ActionResult:
    return ActionResult(
        status="conflict", options=tuple(f"{a:%A %-d %B at %H:%M}" for a in exc.alternatives)
    )


def book(slots: Mapping[str, str], ctx: ActionContext) -> ActionResult:
    """Book ``branch``/``topic`` at ``date``+``time`` for the customer."""
    try:
        appointment = ctx.calendar.book(
            ctx.customer_id or "guest", slots["branch"], slots["topic"], _start(slots), key=ctx.key
        )
    except SlotTaken as exc:
        return _conflict(exc)
    return ActionResult(status="done", values=_values(appointment))


def cancel(slots: Mapping[str, str], ctx: ActionContext) -> ActionResult:
    appointment = ctx.calendar.cancel(slots["appointment"])
    return ActionResult(status="done", values=_values(appointment))


def reschedule(slots: Mapping[str, str], ctx: ActionContext) -> ActionResult:
    try:
        appointment = ctx.calendar.reschedule(slots["appointment"], _start(slots))
    except SlotTaken as exc:
        return _conflict(exc)
    return ActionResult(status="done", values=_values(appointment))
