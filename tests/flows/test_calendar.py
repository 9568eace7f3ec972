from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path

import pytest

from cxbot.errors import BackendError, ConfigError
from cxbot.flows.actions.calendar import Appointment, SlotTaken, SQLiteCalendar

FIXTURE = Path(__file__).resolve().parents[2] / "knowledge" / "northwind" / "advisors.json"
NOW = datetime(2026, 11, 25, 10, 0)
TUESDAY_10 = datetime(2026, 12, 1, 10, 0)
FRIDAY_16 = datetime(2026, 11, 27, 16, 0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "calendar.sqlite"


@pytest.fixture
def calendar(db: Path) -> Iterator[SQLiteCalendar]:
    cal = SQLiteCalendar(db, FIXTURE)
    yield cal
    cal.close()


def booked_rows(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT advisor_id, start, customer_id FROM appointments WHERE status = 'booked' "
            "ORDER BY start, advisor_id"
        ).fetchall()
    conn.close()
    return [tuple(r) for r in rows]


def test_branches_topics_and_opening_come_from_the_fixture(calendar: SQLiteCalendar) -> None:
    assert calendar.branches() == ["Harbour Street", "Market Square", "Old Town", "Riverside"]
    assert calendar.topics() == ["mortgage", "savings", "business", "general"]
    opening = calendar.opening()
    assert (opening.start, opening.end, opening.slot_minutes) == (time(9), time(17), 60)
    assert opening.weekdays == frozenset(range(5))


def test_reopening_without_the_fixture_keeps_the_seed(db: Path) -> None:
    SQLiteCalendar(db, FIXTURE).close()

    again = SQLiteCalendar(db)
    try:
        assert again.branches() == ["Harbour Street", "Market Square", "Old Town", "Riverside"]
        assert again.opening().slot_minutes == 60
    finally:
        again.close()


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (time(9), True),
        (time(16), True),
        (time(8), False),
        (time(17), False),
        (time(10, 30), False),
        (time(20), False),
    ],
)
def test_slot_starts_are_on_the_hour_within_opening(
    calendar: SQLiteCalendar, at: time, open_: bool
) -> None:
    assert calendar.opening().is_slot_start(at) is open_


def test_booking_returns_the_appointment_and_lists_it(calendar: SQLiteCalendar) -> None:
    booked = calendar.book("C-1", "Harbour Street", "mortgage", TUESDAY_10)

    assert booked.id.startswith("APT-")
    assert (booked.customer_id, booked.advisor, booked.branch, booked.topic, booked.start) == (
        "C-1",
        "A-01",
        "Harbour Street",
        "mortgage",
        TUESDAY_10,
    )
    assert booked.label == "mortgage appointment at Harbour Street on Tuesday 1 December at 10:00"
    assert calendar.upcoming("C-1", NOW) == [booked]
    assert calendar.upcoming("C-2", NOW) == []
    assert calendar.upcoming("C-1", datetime(2026, 12, 1, 10, 1)) == []


@pytest.mark.parametrize("requested", [TUESDAY_10, FRIDAY_16])
def test_taken_slot_offers_three_bookable_alternatives_after_it(
    calendar: SQLiteCalendar, requested: datetime
) -> None:
    calendar.book("C-1", "Harbour Street", "mortgage", requested)

    with pytest.raises(SlotTaken) as info:
        calendar.book("C-2", "Harbour Street", "mortgage", requested)

    alternatives = info.value.alternatives
    assert len(alternatives) == 3
    assert list(alternatives) == sorted(alternatives)
    opening = calendar.opening()
    for start in alternatives:
        assert start > requested
        assert opening.is_open_day(start.date())
        assert opening.is_slot_start(start.time())
    for start in alternatives:
        assert calendar.book("C-2", "Harbour Street", "mortgage", start).start == start


def test_alternatives_skip_the_weekend_and_taken_slots(calendar: SQLiteCalendar) -> None:
    calendar.book("C-1", "Harbour Street", "mortgage", FRIDAY_16)
    calendar.book("C-3", "Harbour Street", "savings", datetime(2026, 11, 30, 10))

    with pytest.raises(SlotTaken) as info:
        calendar.book("C-2", "Harbour Street", "mortgage", FRIDAY_16)

    assert info.value.alternatives == (
        datetime(2026, 11, 30, 9),
        datetime(2026, 11, 30, 11),
        datetime(2026, 11, 30, 12),
    )


def test_one_advisor_per_topic_means_one_booking_fills_the_topic(
    calendar: SQLiteCalendar,
) -> None:
    calendar.book("C-1", "Harbour Street", "mortgage", TUESDAY_10)

    with pytest.raises(SlotTaken):
        calendar.book("C-2", "Harbour Street", "savings", TUESDAY_10)
    other = calendar.book("C-3", "Harbour Street", "business", TUESDAY_10)
    with pytest.raises(SlotTaken):
        calendar.book("C-4", "Harbour Street", "general", TUESDAY_10)

    assert other.advisor == "A-02"
    assert calendar.book("C-5", "Market Square", "mortgage", TUESDAY_10).advisor == "A-04"


def test_no_double_booking_from_concurrent_instances(db: Path) -> None:
    SQLiteCalendar(db, FIXTURE).close()
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: list[Appointment | SlotTaken | BaseException] = []
    lock = threading.Lock()

    def attempt(customer: str) -> None:
        cal = SQLiteCalendar(db, FIXTURE)
        try:
            barrier.wait(timeout=30)
            result: Appointment | SlotTaken | BaseException = cal.book(
                customer, "Harbour Street", "mortgage", TUESDAY_10
            )
        except (SlotTaken, BackendError, sqlite3.Error, threading.BrokenBarrierError) as exc:
            result = exc
        finally:
            cal.close()
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=attempt, args=(f"C-{n}",)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert len(outcomes) == threads
    booked = [o for o in outcomes if isinstance(o, Appointment)]
    taken = [o for o in outcomes if isinstance(o, SlotTaken)]
    assert len(booked) == 1, outcomes
    assert len(taken) == threads - 1, outcomes
    assert booked_rows(db) == [("A-01", "2026-12-01T10:00", booked[0].customer_id)]


def test_reschedule_moves_the_booking(calendar: SQLiteCalendar) -> None:
    booked = calendar.book("C-1", "Harbour Street", "mortgage", TUESDAY_10)

    moved = calendar.reschedule(booked.id, datetime(2026, 12, 2, 14))

    assert (moved.id, moved.advisor, moved.start) == (booked.id, "A-01", datetime(2026, 12, 2, 14))
    assert calendar.upcoming("C-1", NOW) == [moved]
    assert calendar.book("C-2", "Harbour Street", "mortgage", TUESDAY_10).start == TUESDAY_10


def test_reschedule_into_a_taken_slot_raises_and_keeps_the_booking(
    calendar: SQLiteCalendar, db: Path
) -> None:
    mine = calendar.book("C-1", "Harbour Street", "mortgage", TUESDAY_10)
    theirs = datetime(2026, 12, 2, 14)
    calendar.book("C-2", "Harbour Street", "mortgage", theirs)

    with pytest.raises(SlotTaken) as info:
        calendar.reschedule(mine.id, theirs)

    assert info.value.alternatives == (
        datetime(2026, 12, 2, 15),
        datetime(2026, 12, 2, 16),
        datetime(2026, 12, 3, 9),
    )
    assert calendar.upcoming("C-1", NOW) == [mine]
    assert booked_rows(db) == [
        ("A-01", "2026-12-01T10:00", "C-1"),
        ("A-01", "2026-12-02T14:00", "C-2"),
    ]
    assert calendar.book("C-3", "Market Square", "mortgage", theirs).advisor == "A-04"


def test_cancel_frees_the_slot(calendar: SQLiteCalendar) -> None:
    booked = calendar.book("C-1", "Harbour Street", "mortgage", TUESDAY_10)

    cancelled = calendar.cancel(booked.id)

    assert cancelled == booked
    assert calendar.upcoming("C-1", NOW) == []
    assert calendar.get(booked.id) is None
    again = calendar.book("C-2", "Harbour Street", "mortgage", TUESDAY_10)
    assert again.advisor == "A-01"
    with pytest.raises(BackendError):
        calendar.cancel(booked.id)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param("{not json", ("malformed", "JSONDecodeError"), id="not-json"),
        pytest.param(json.dumps({"slot_minutes": 60}), ("malformed", "opening"), id="no-opening"),
        pytest.param(
            json.dumps(
                {
                    "slot_minutes": 60,
                    "opening": {"start": "09:00", "end": "17:00", "weekdays": [0]},
                    "topics": ["mortgage"],
                    "branches": [{"name": "North"}],
                    "advisors": [{"id": "A-1", "branch": "North", "topics": ["mortgage"]}],
                }
            ),
            ("malformed", "name"),
            id="advisor-without-name",
        ),
    ],
)
def test_malformed_fixture_raises_config_error_naming_it(
    tmp_path: Path, db: Path, content: str, words: tuple[str, ...]
) -> None:
    fixture = tmp_path / "advisors.json"
    fixture.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        SQLiteCalendar(db, fixture)

    assert info.value.file == str(fixture)
    assert str(info.value).startswith(f"{fixture}: ")
    for word in words:
        assert word in info.value.reason


def test_missing_fixture_raises_config_error_naming_it(tmp_path: Path, db: Path) -> None:
    fixture = tmp_path / "nowhere.json"

    with pytest.raises(ConfigError) as info:
        SQLiteCalendar(db, fixture)

    assert info.value.file == str(fixture)
    assert info.value.reason == "calendar fixture not found"


def test_unseeded_calendar_raises_config_error(db: Path) -> None:
    with pytest.raises(ConfigError) as info:
        SQLiteCalendar(db)

    assert info.value.file == str(db)
    assert info.value.fix is not None and "calendar.fixture" in info.value.fix


def test_fixture_rules_close_bank_holidays_and_bound_the_horizon(tmp_path: Path) -> None:
    from datetime import date

    calendar = SQLiteCalendar(tmp_path / "c.sqlite", FIXTURE)
    opening = calendar.opening()
    assert date(2026, 12, 25) in opening.closed_dates
    assert not opening.is_open_day(date(2026, 12, 25))  # a Friday, but Christmas Day
    assert opening.is_open_day(date(2026, 12, 24))
    assert opening.horizon_days == 56 and opening.notice_minutes == 120
    taken = calendar.book("C-1", "Harbour Street", "mortgage", datetime(2026, 12, 24, 16, 0))
    assert taken.id.startswith("APT-")
    with pytest.raises(SlotTaken) as info:
        calendar.book("C-2", "Harbour Street", "mortgage", datetime(2026, 12, 24, 16, 0))
    assert all(opening.is_open_day(a.date()) for a in info.value.alternatives)
    assert date(2026, 12, 25) not in {a.date() for a in info.value.alternatives}
