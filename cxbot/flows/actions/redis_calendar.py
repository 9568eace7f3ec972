"""Branch advisors' calendar in Redis, for several workers on one or many hosts.

Why Redis and not the SQLite calendar file: SQLite's write lock (``BEGIN IMMEDIATE``) and
its unique index keep one host's processes from double booking, but stateless workers run
on several hosts, and SQLite's locking is not reliable on a network file system. Redis is
already the deployment's shared conversation store, and one Lua script runs atomically
with respect to every other client, which is the transaction a booking needs.

- The advisors, branches, topics and opening hours come from the calendar fixture every
  worker reads (configuration, not state); only appointments live in Redis.
- One key per booked (advisor, start): ``SET``-if-absent inside the booking script is the
  unique constraint. The script walks the branch's advisors for the topic in id order and
  takes the first free one, so two customers can never hold the same advisor's slot,
  whichever workers they talk to.
- Appointments: a hash each (``APT-00001`` from one counter), a set per customer and a set
  of all. Rescheduling moves the slot key in one script; cancelling frees it.
- A booking with a key (the turn's conversation and loaded version) records it for a
  week; the same key books nothing new and returns that appointment, so a turn run again
  after its worker died books once.

Every key shares the hash tag ``{calendar}``, so the scripts' keys live on one shard of a
Redis Cluster.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from cxbot._redis import connect, redis_errors, safe_url
from cxbot.errors import BackendError, ConfigError
from cxbot.flows.actions.calendar import (
    Appointment,
    Opening,
    SlotTaken,
    nearest_free,
    opening_of,
    read_fixture,
)

__all__ = ["RedisCalendar"]

_BOOK = """
-- KEYS: sequence, all appointments, customer's appointments, the booking key, slot keys of
--       the candidates
-- ARGV: key prefix, customer, branch, topic, start, '1' if the booking key counts,
--       advisor ids (in KEYS[5..] order)
if ARGV[6] == '1' then
  local done = redis.call('GET', KEYS[4])
  if done then
    local apt = ARGV[1] .. 'appointment:' .. done
    if redis.call('HGET', apt, 'status') == 'booked' then
      return {done, redis.call('HGET', apt, 'advisor')}
    end
  end
end
for i = 5, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local n = redis.call('INCR', KEYS[1])
    local id = string.format('APT-%05d', n)
    local advisor = ARGV[i + 2]
    if ARGV[6] == '1' then redis.call('SET', KEYS[4], id, 'EX', 604800) end
    redis.call('SET', KEYS[i], id)
    redis.call('HSET', ARGV[1] .. 'appointment:' .. id, 'customer_id', ARGV[2],
               'advisor', advisor, 'branch', ARGV[3], 'topic', ARGV[4],
               'start', ARGV[5], 'status', 'booked')
    redis.call('SADD', KEYS[2], id)
    redis.call('SADD', KEYS[3], id)
    return {id, advisor}
  end
end
return false
"""
_RESCHEDULE = """
-- KEYS: the appointment, its slot key, slot keys of the candidates
-- ARGV: appointment id, new start, advisor ids (in KEYS[3..] order)
if redis.call('HGET', KEYS[1], 'status') ~= 'booked' then return -1 end
for i = 3, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if not holder or holder == ARGV[1] then
    if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
    redis.call('SET', KEYS[i], ARGV[1])
    redis.call('HSET', KEYS[1], 'start', ARGV[2], 'advisor', ARGV[2 + i - 2])
    return ARGV[2 + i - 2]
  end
end
return false
"""
_CANCEL = """
-- KEYS: the appointment, its slot key. ARGV: appointment id
if redis.call('HGET', KEYS[1], 'status') ~= 'booked' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'cancelled')
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


def _minute(at: datetime) -> str:
    return at.isoformat(timespec="minutes")


class RedisCalendar:
    """Appointments in Redis; advisors and opening hours from the calendar fixture."""

    def __init__(self, url: str, fixture: str | Path | None, *, prefix: str = "cxbot") -> None:
        if fixture is None:
            raise ConfigError(
                "the calendar has no branches or opening hours",
                fix="set calendar.fixture in cxbot.yaml to a JSON file of branches and advisors",
            )
        parsed = read_fixture(Path(fixture))
        self.url = url
        self._opening = opening_of(parsed.opening)
        self._branches = sorted(name for name, _ in parsed.branches)
        self._topics = list(parsed.topics)
        self._advisors = sorted(parsed.advisors)  # (id, name, branch, topics), by id
        self._base = f"{prefix}:{{calendar}}:"
        self._redis = connect(url)
        self._book = self._redis.register_script(_BOOK)
        self._reschedule = self._redis.register_script(_RESCHEDULE)
        self._cancel = self._redis.register_script(_CANCEL)
        self._what = f"calendar {safe_url(url)}"

    # -- reference data ------------------------------------------------------------------
    def branches(self) -> list[str]:
        return list(self._branches)

    def advisors(self) -> list[str]:
        """Advisors' names (for entity extraction: "can I see Helen?")."""
        return sorted(name for _, name, _, _ in self._advisors)

    def topics(self) -> list[str]:
        return list(self._topics)

    def opening(self) -> Opening:
        return self._opening

    def _candidates(self, branch: str, topic: str) -> list[str]:
        return [i for i, _, at, topics in self._advisors if at == branch and topic in topics]

    def _slot(self, advisor: str, start: datetime) -> str:
        return f"{self._base}slot:{advisor}:{_minute(start)}"

    def _appointment_key(self, appointment_id: str) -> str:
        return f"{self._base}appointment:{appointment_id}"

    # -- appointments --------------------------------------------------------------------
    def book(
        self, customer_id: str, branch: str, topic: str, start: datetime, *, key: str | None = None
    ) -> Appointment:
        """Book the first free advisor; with ``key`` (kept a week), a second booking with
        the same key returns the first one's appointment."""
        advisors = self._candidates(branch, topic)
        keys = [
            f"{self._base}sequence",
            f"{self._base}appointments",
            f"{self._base}customer:{customer_id}",
            f"{self._base}booking-key:{key or ''}",
            *(self._slot(a, start) for a in advisors),
        ]
        args = [self._base, customer_id, branch, topic, _minute(start), "1" if key else ""]
        with redis_errors(self._what):
            taken = self._book(keys=keys, args=[*args, *advisors])
        if not taken:
            raise SlotTaken(self.alternatives(branch, topic, start))
        appointment_id, advisor = taken
        return Appointment(str(appointment_id), customer_id, str(advisor), branch, topic, start)

    def alternatives(
        self, branch: str, topic: str, start: datetime, count: int = 3
    ) -> list[datetime]:
        """The nearest free starts after ``start`` on open days (same day first)."""
        advisors = self._candidates(branch, topic)

        def is_free(at: datetime) -> bool:
            with redis_errors(self._what):
                held = self._redis.mget([self._slot(a, at) for a in advisors])
            return any(h is None for h in held)

        return nearest_free(self._opening, start, is_free, count) if advisors else []

    def get(self, appointment_id: str) -> Appointment | None:
        appointment = self._read(appointment_id)
        return appointment[0] if appointment is not None and appointment[1] == "booked" else None

    def _read(self, appointment_id: str) -> tuple[Appointment, str] | None:
        with redis_errors(self._what):
            data: dict[str, Any] = dict(self._redis.hgetall(self._appointment_key(appointment_id)))  # type: ignore[arg-type]
        if not data:
            return None
        return (
            Appointment(
                id=appointment_id,
                customer_id=data["customer_id"],
                advisor=data["advisor"],
                branch=data["branch"],
                topic=data["topic"],
                start=datetime.fromisoformat(data["start"]),
            ),
            data["status"],
        )

    def upcoming(self, customer_id: str, now: datetime) -> list[Appointment]:
        with redis_errors(self._what):
            ids = self._redis.smembers(f"{self._base}customer:{customer_id}")
        found = [self.get(str(i)) for i in ids]
        return sorted(
            (a for a in found if a is not None and a.start >= now.replace(second=0)),
            key=lambda a: (a.start, a.id),
        )

    def booked(self) -> list[Appointment]:
        """Every booked appointment (for audits and the load benchmark's checks)."""
        with redis_errors(self._what):
            ids = self._redis.smembers(f"{self._base}appointments")
        found = [self.get(str(i)) for i in ids]
        return sorted((a for a in found if a is not None), key=lambda a: a.id)

    def cancel(self, appointment_id: str) -> Appointment:
        appointment = self.get(appointment_id)
        if appointment is None:
            raise BackendError(f"no booked appointment {appointment_id}")
        keys = [
            self._appointment_key(appointment_id),
            self._slot(appointment.advisor, appointment.start),
        ]
        with redis_errors(self._what):
            done = self._cancel(keys=keys, args=[appointment_id])
        if not done:
            raise BackendError(f"no booked appointment {appointment_id}")
        return appointment

    def reschedule(self, appointment_id: str, start: datetime) -> Appointment:
        old = self.get(appointment_id)
        if old is None:
            raise BackendError(f"no booked appointment {appointment_id}")
        advisors = [old.advisor] + [
            a for a in self._candidates(old.branch, old.topic) if a != old.advisor
        ]
        keys = [
            self._appointment_key(appointment_id),
            self._slot(old.advisor, old.start),
            *(self._slot(a, start) for a in advisors),
        ]
        with redis_errors(self._what):
            moved = self._reschedule(keys=keys, args=[appointment_id, _minute(start), *advisors])
        if moved == -1:
            raise BackendError(f"no booked appointment {appointment_id}")
        if not moved:
            raise SlotTaken(self.alternatives(old.branch, old.topic, start))
        return Appointment(old.id, old.customer_id, str(moved), old.branch, old.topic, start)

    def close(self) -> None:
        """Close the client's connections (they reopen on next use)."""
        self._redis.close()
