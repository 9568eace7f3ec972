"""The Redis calendar on a real redis-server: no advisor slot is ever given twice, however
many workers book at once; rescheduling and cancelling move and free slots; an assistant
configured with storage.redis_url keeps conversations and appointments there."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.redis_store import RedisConversationStore
from cxbot.flows.actions.calendar import SlotTaken, SQLiteCalendar
from cxbot.flows.actions.redis_calendar import RedisCalendar

pytestmark = pytest.mark.integration  # spawns redis-server

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "knowledge" / "northwind" / "advisors.json"
TUESDAY_10 = datetime(2026, 12, 1, 10, 0)


@pytest.fixture
def calendar(redis_url: str, prefix: str) -> Iterator[RedisCalendar]:
    calendar = RedisCalendar(redis_url, FIXTURE, prefix=prefix)
    yield calendar
    calendar.close()


def test_concurrent_bookings_of_one_slot_get_one_advisor_each(
    redis_url: str, prefix: str, calendar: RedisCalendar
) -> None:
    advisors = [a for a in calendar._candidates("Riverside", "savings")]
    booked: list[str] = []
    taken: list[SlotTaken] = []

    def book(n: int) -> None:
        mine = RedisCalendar(redis_url, FIXTURE, prefix=prefix)  # a worker of its own
        try:
            booked.append(mine.book(f"C-{n}", "Riverside", "savings", TUESDAY_10).advisor)
        except SlotTaken as exc:
            taken.append(exc)

    threads = [threading.Thread(target=book, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(booked) == sorted(advisors)  # every advisor once, nobody twice
    assert len(taken) == 10 - len(advisors)
    assert all(exc.alternatives and exc.alternatives[0] > TUESDAY_10 for exc in taken)
    slots = [(a.advisor, a.start) for a in calendar.booked()]
    assert len(slots) == len(set(slots)) == len(advisors)


def test_reschedule_and_cancel_move_and_free_the_slot(calendar: RedisCalendar) -> None:
    first = calendar.book("C-1", "Old Town", "mortgage", TUESDAY_10)
    assert calendar.upcoming("C-1", datetime(2026, 11, 25)) == [first]
    moved = calendar.reschedule(first.id, datetime(2026, 12, 1, 11, 0))
    assert moved.id == first.id and moved.start.hour == 11
    again = calendar.book("C-2", "Old Town", "mortgage", TUESDAY_10)  # the old slot is free
    assert again.advisor == first.advisor
    with pytest.raises(SlotTaken):
        calendar.reschedule(again.id, datetime(2026, 12, 1, 11, 0))
    calendar.cancel(moved.id)
    assert calendar.get(moved.id) is None
    assert calendar.upcoming("C-1", datetime(2026, 11, 25)) == []
    third = calendar.book("C-3", "Old Town", "mortgage", datetime(2026, 12, 1, 11, 0))
    assert third.advisor == first.advisor


def test_an_assistant_books_through_redis(
    redis_url: str, prefix: str, make_bot: Callable[..., Assistant]
) -> None:
    env = {"CXBOT_STORAGE__REDIS_URL": redis_url, "CXBOT_STORAGE__REDIS_PREFIX": prefix}
    bot = make_bot(env=env)
    assert isinstance(bot.deps.conversations, RedisConversationStore)
    assert isinstance(bot.deps.calendar, RedisCalendar)
    texts = [
        "I'd like to book a savings appointment at Riverside next Tuesday at 10am",
        "yes please",
    ]
    replies = [bot.respond("redis-booking", t, customer_id="C-1002") for t in texts]
    assert "APT-00001" in replies[-1].text
    other = make_bot(env=env)  # another worker: same conversation, same bookings
    assert other.state("redis-booking").turn == 2
    (appointment,) = other.deps.calendar.upcoming("C-1002", datetime(2026, 11, 25))
    assert (appointment.branch, appointment.start) == ("Riverside", TUESDAY_10)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_retried_booking_with_its_key_books_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    calendar: SQLiteCalendar | RedisCalendar
    if backend == "redis":
        calendar = request.getfixturevalue("calendar")
    else:
        calendar = SQLiteCalendar(tmp_path / "calendar.sqlite", FIXTURE)
    first = calendar.book("C-1", "Old Town", "mortgage", TUESDAY_10, key="conv-1#3")
    again = calendar.book("C-1", "Old Town", "mortgage", TUESDAY_10, key="conv-1#3")
    assert again == first
    assert calendar.upcoming("C-1", datetime(2026, 11, 25)) == [first]
    with pytest.raises(SlotTaken):  # another turn's booking of the same slot (one advisor)
        calendar.book("C-2", "Old Town", "mortgage", TUESDAY_10, key="conv-2#1")
    other = calendar.book("C-1", "Old Town", "mortgage", TUESDAY_10.replace(hour=11), key="c#4")
    assert other.id != first.id
    calendar.cancel(first.id)
    rebooked = calendar.book("C-1", "Old Town", "mortgage", TUESDAY_10, key="conv-1#3")
    assert rebooked.id not in (first.id, other.id)  # a cancelled booking is not returned
