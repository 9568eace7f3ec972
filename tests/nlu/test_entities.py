"""Behaviour of cxbot.nlu.entities.extract_entities against a fixed clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cxbot.nlu.entities import extract_entities
from cxbot.types import Entity, EntityKind

NOW = datetime(2026, 11, 25, 10, 0)  # a Wednesday
FRIDAY = datetime(2026, 11, 27, 18, 30)


def _of_kind(text: str, kind: EntityKind, now: datetime = NOW) -> list[Entity]:
    return [e for e in extract_entities(text, now) if e.kind == kind]


def _single(text: str, kind: EntityKind, now: datetime = NOW) -> Entity:
    found = _of_kind(text, kind, now)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------------- dates

DATES = [
    ("can you do today?", "today", "2026-11-25"),
    ("tomorrow please", "tomorrow", "2026-11-26"),
    ("the day after tomorrow", "the day after tomorrow", "2026-11-27"),
    ("day after tomorrow works", "day after tomorrow", "2026-11-27"),
    ("Friday", "Friday", "2026-11-27"),
    ("on friday", "friday", "2026-11-27"),
    ("on Wednesday", "Wednesday", "2026-12-02"),  # today excluded
    ("Tuesday", "Tuesday", "2026-12-01"),
    ("next Friday", "next Friday", "2026-11-27"),
    ("next Wednesday", "next Wednesday", "2026-12-02"),
    ("this Friday", "this Friday", "2026-11-27"),
    ("this Wednesday", "this Wednesday", "2026-11-25"),
    ("last Friday", "last Friday", "2026-11-20"),
    ("in 3 days", "in 3 days", "2026-11-28"),
    ("in two weeks", "in two weeks", "2026-12-09"),
    ("in a week", "in a week", "2026-12-02"),
    ("in 2 months", "in 2 months", "2027-01-25"),
    ("next week", "next week", "2026-11-30"),
    ("the 3rd", "the 3rd", "2026-12-03"),
    ("on the 3rd please", "the 3rd", "2026-12-03"),
    ("3rd", "3rd", "2026-12-03"),
    ("the 25th", "the 25th", "2026-11-25"),  # today allowed
    ("the 24th", "the 24th", "2026-12-24"),
    ("the 31st", "the 31st", "2026-12-31"),  # November has no 31st
    ("3 December", "3 December", "2026-12-03"),
    ("December 3", "December 3", "2026-12-03"),
    ("3rd of December", "3rd of December", "2026-12-03"),
    ("the 3rd of December", "the 3rd of December", "2026-12-03"),
    ("Dec 3rd", "Dec 3rd", "2026-12-03"),
    ("3 Dec", "3 Dec", "2026-12-03"),
    ("25 November", "25 November", "2026-11-25"),  # today is not past
    ("24 November", "24 November", "2027-11-24"),  # already past: next year
    ("3 January", "3 January", "2027-01-03"),
    ("29 February", "29 February", "2028-02-29"),  # next leap year
    ("3 December 2027", "3 December 2027", "2027-12-03"),
    ("December 3, 2027", "December 3, 2027", "2027-12-03"),
    ("2026-12-03", "2026-12-03", "2026-12-03"),
    ("03/12/2026", "03/12/2026", "2026-12-03"),  # day-first
    ("3/12/26", "3/12/26", "2026-12-03"),
    ("03.12.2026.", "03.12.2026", "2026-12-03"),
    ("on 13-01-2027", "13-01-2027", "2027-01-13"),
]


@pytest.mark.parametrize(("text", "span", "value"), DATES)
def test_dates(text: str, span: str, value: str) -> None:
    entity = _single(text, "date")
    assert (entity.text, entity.value) == (span, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Friday", "2026-12-04"),  # bare weekday on a Friday: next week's
        ("next Friday", "2026-12-04"),
        ("this Friday", "2026-11-27"),
        ("next week", "2026-11-30"),
        ("the 27th", "2026-11-27"),
    ],
)
def test_dates_relative_to_a_friday(text: str, value: str) -> None:
    assert _single(text, "date", FRIDAY).value == value


@pytest.mark.parametrize(
    "text",
    ["31/02/2026", "2026-13-01", "30 February", "the 32nd"],
)
def test_impossible_dates_are_dropped(text: str) -> None:
    assert _of_kind(text, "date") == []


# ---------------------------------------------------------------------------------- times

TIMES = [
    ("3pm", "3pm", "15:00"),
    ("3 pm", "3 pm", "15:00"),
    ("3 PM", "3 PM", "15:00"),
    ("9am", "9am", "09:00"),
    ("3:30pm", "3:30pm", "15:30"),
    ("3.30pm", "3.30pm", "15:30"),
    ("11 p.m.", "11 p.m.", "23:00"),
    ("12am", "12am", "00:00"),
    ("12pm", "12pm", "12:00"),
    ("15:00", "15:00", "15:00"),
    ("09:15", "09:15", "09:15"),
    ("10:30", "10:30", "10:30"),
    ("3:30", "3:30", "15:30"),  # business-hours heuristic
    ("at 10", "10", "10:00"),
    ("at 4", "4", "16:00"),
    ("at 12", "12", "12:00"),
    ("at 17", "17", "17:00"),
    ("at 10.30", "10.30", "10:30"),
    ("see you at 10.", "10", "10:00"),
    ("10 o'clock", "10 o'clock", "10:00"),
    ("3 o'clock", "3 o'clock", "15:00"),
    ("ten o\u2019clock", "ten o\u2019clock", "10:00"),
    ("noon", "noon", "12:00"),
    ("12 noon", "12 noon", "12:00"),
    ("midday", "midday", "12:00"),
    ("midnight", "midnight", "00:00"),
    ("half past two", "half past two", "14:30"),
    ("half past 9", "half past 9", "09:30"),
    ("half past 2 am", "half past 2 am", "02:30"),
    ("quarter past 3", "quarter past 3", "15:15"),
    ("a quarter past ten", "a quarter past ten", "10:15"),
    ("twenty past 6", "twenty past 6", "18:20"),
    ("quarter to 4", "quarter to 4", "15:45"),
    ("quarter to 4pm", "quarter to 4pm", "15:45"),
    ("quarter to 1", "quarter to 1", "12:45"),
    ("quarter to 8", "quarter to 8", "07:45"),
    ("in the morning", "morning", "09:00"),
    ("in the afternoon", "afternoon", "14:00"),
    ("this evening", "evening", "17:00"),
    ("Friday morning", "morning", "09:00"),
    ("7 in the evening", "7 in the evening", "19:00"),
    ("at 9 in the morning", "9 in the morning", "09:00"),
    ("half past two in the afternoon", "half past two in the afternoon", "14:30"),
]


@pytest.mark.parametrize(("text", "span", "value"), TIMES)
def test_times(text: str, span: str, value: str) -> None:
    entity = _single(text, "time")
    assert (entity.text, entity.value) == (span, value)


@pytest.mark.parametrize(
    ("hour", "value"),
    [(1, "13:00"), (7, "19:00"), (8, "08:00"), (11, "11:00"), (12, "12:00"), (13, "13:00")],
)
def test_bare_hour_heuristic_after_at(hour: int, value: str) -> None:
    assert _single(f"come at {hour}", "time").value == value


def test_tomorrow_afternoon_gives_a_date_and_a_time() -> None:
    entities = extract_entities("tomorrow afternoon", NOW)
    assert [(e.kind, e.text, e.value) for e in entities] == [
        ("date", "tomorrow", "2026-11-26"),
        ("time", "afternoon", "14:00"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "I have 3 cards",
        "card ending 1234",
        "good morning",
        "morning!",
        "the 3rd floor",
        "my 2nd attempt",
        "we may 2 people",
        "2.5 hours",
        "order 12345678",
        "from 10 to 5",
        "at 10 Downing Street",
        "at 2.5%",
        "it costs 15",
    ],
)
def test_bare_numbers_are_not_dates_or_times(text: str) -> None:
    assert [e for e in extract_entities(text, NOW) if e.kind in ("date", "time")] == []


# ------------------------------------------------------------------------- phones / emails

PHONES = [
    ("call me on 07700 900123", "07700 900123", "+447700900123"),
    ("ring 07911 123456 today", "07911 123456", "+447911123456"),
    ("+44 20 7946 0958", "+44 20 7946 0958", "+442079460958"),
    ("020 7946 0958", "020 7946 0958", "+442079460958"),
    ("(020) 7946 0958", "(020) 7946 0958", "+442079460958"),
    ("try +33 1 23 45 67 89", "+33 1 23 45 67 89", "+33123456789"),
]


@pytest.mark.parametrize(("text", "span", "value"), PHONES)
def test_phones(text: str, span: str, value: str) -> None:
    entity = _single(text, "phone")
    assert (entity.text, entity.value) == (span, value)


def test_phone_region_applies_to_national_numbers() -> None:
    found = extract_entities("call (202) 555-0147", NOW, kinds=["phone"], region="US")
    assert [e.value for e in found] == ["+12025550147"]


@pytest.mark.parametrize("text", ["ref 123456", "order number 12345678", "card ending 1234"])
def test_short_digit_runs_are_not_phones(text: str) -> None:
    assert _of_kind(text, "phone") == []


EMAILS = [
    ("mail Jo.Smith@Example.com", "Jo.Smith@Example.com", "jo.smith@example.com"),
    ("<a.b+tag@mail.example.co.uk>", "a.b+tag@mail.example.co.uk", "a.b+tag@mail.example.co.uk"),
    ("it's jo@example.com.", "jo@example.com", "jo@example.com"),
]


@pytest.mark.parametrize(("text", "span", "value"), EMAILS)
def test_emails(text: str, span: str, value: str) -> None:
    entity = _single(text, "email")
    assert (entity.text, entity.value) == (span, value)


@pytest.mark.parametrize("text", ["jo@", "@example.com", "jo at example dot com", "jo@localhost"])
def test_not_emails(text: str) -> None:
    assert _of_kind(text, "email") == []


# ---------------------------------------------------------------------------- card / IBAN

CARDS = [
    ("4111 1111 1111 1111", "4111111111111111"),
    ("4111-1111-1111-1111", "4111111111111111"),
    ("4111111111111111", "4111111111111111"),
    ("5500 0000 0000 0004", "5500000000000004"),
    ("3782 822463 10005", "378282246310005"),  # 15-digit Amex
]


@pytest.mark.parametrize(("number", "value"), CARDS)
def test_card_numbers(number: str, value: str) -> None:
    text = f"my card is {number}, thanks"
    entity = _single(text, "card_number")
    assert (entity.text, entity.value) == (number, value)
    assert [e.kind for e in extract_entities(text, NOW)] == ["card_number"]


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "4111111111111112",
        "4111  1111 1111 1111",  # double space breaks the number
        "1234 5678 9012",  # too short
        "4111 1111 1111 1111 1111 1",  # too long
    ],
)
def test_not_card_numbers(text: str) -> None:
    assert _of_kind(text, "card_number") == []


IBANS = [
    ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
    ("GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("gb82 west 1234 5698 7654 32", "GB82WEST12345698765432"),
    ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
]


@pytest.mark.parametrize(("iban", "value"), IBANS)
def test_ibans(iban: str, value: str) -> None:
    text = f"pay into {iban} please"
    entity = _single(text, "iban")
    assert (entity.text, entity.value) == (iban, value)
    assert [e.kind for e in extract_entities(text, NOW)] == ["iban"]


@pytest.mark.parametrize(
    "text",
    ["GB83 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 33", "XX82 WEST 1234"],
)
def test_invalid_ibans(text: str) -> None:
    assert _of_kind(text, "iban") == []


# -------------------------------------------------------------------------------- amounts

AMOUNTS = [
    ("£50", "£50", "50 GBP"),
    ("£1,250.50", "£1,250.50", "1250.50 GBP"),
    ("£ 20.5", "£ 20.5", "20.5 GBP"),
    ("50 pounds", "50 pounds", "50 GBP"),
    ("1 pound", "1 pound", "1 GBP"),
    ("€20", "€20", "20 EUR"),
    ("20 euros", "20 euros", "20 EUR"),
    ("$15", "$15", "15 USD"),
    ("15 dollars", "15 dollars", "15 USD"),
    ("100 GBP", "100 GBP", "100 GBP"),
    ("GBP 100", "GBP 100", "100 GBP"),
    ("100gbp", "100gbp", "100 GBP"),
    ("£2,000,000", "£2,000,000", "2000000 GBP"),
]


@pytest.mark.parametrize(("text", "span", "value"), AMOUNTS)
def test_amounts(text: str, span: str, value: str) -> None:
    entity = _single(f"it was {text} in total", "amount")
    assert (entity.text, entity.value) == (span, value)


@pytest.mark.parametrize("text", ["I have 3 cards", "50", "50%", "2.5 hours"])
def test_not_amounts(text: str) -> None:
    assert _of_kind(text, "amount") == []


# --------------------------------------------------------------------- conflicts and spans


def test_phone_is_not_also_a_date_or_time() -> None:
    entities = extract_entities("call 020 7946 0958 at 4", NOW)
    assert [(e.kind, e.text) for e in entities] == [("phone", "020 7946 0958"), ("time", "4")]


def test_amount_wins_over_at_hour() -> None:
    entities = extract_entities("I paid at 4 pounds each", NOW)
    assert [(e.kind, e.value) for e in entities] == [("amount", "4 GBP")]


def test_longer_date_span_wins() -> None:
    entities = extract_entities("the day after tomorrow, next Tuesday, 3rd of December", NOW)
    assert [e.text for e in entities] == [
        "the day after tomorrow",
        "next Tuesday",
        "3rd of December",
    ]


MIXED = (
    "Book me at Harbour Street next Tuesday at half past two, "
    "call me on 07700 900123 or mail Jo.Smith@Example.com"
)


def test_mixed_sentence() -> None:
    entities = extract_entities(MIXED, NOW)
    assert [(e.kind, e.text, e.value) for e in entities] == [
        ("date", "next Tuesday", "2026-12-01"),
        ("time", "half past two", "14:30"),
        ("phone", "07700 900123", "+447700900123"),
        ("email", "Jo.Smith@Example.com", "jo.smith@example.com"),
    ]


CORPUS = [
    MIXED,
    "Pay £1,250.50 from GB82 WEST 1234 5698 7654 32 on 03/12/2026 at 15:00 please",
    "card 4111 1111 1111 1111, phone +44 20 7946 0958, tomorrow afternoon at 4",
    "In 3 days or on the 3rd of December at 10 o'clock, 20 euros, jo@example.com",
    "quarter to 4 next Friday, the 31st, midday, 2026-12-03 and $15",
]


@pytest.mark.parametrize("text", CORPUS)
def test_spans_sorted_and_disjoint(text: str) -> None:
    entities = extract_entities(text, NOW)
    assert entities
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
    assert [e.start for e in entities] == sorted(e.start for e in entities)
    for left, right in itertools.pairwise(entities):
        assert left.end <= right.start


# ------------------------------------------------------------------------- API behaviour


@pytest.mark.parametrize(
    "kinds",
    [["date"], ["time"], ["phone"], ["email"], ["amount", "iban"], ["card_number", "time"]],
)
def test_kinds_filter_is_the_full_result_filtered(kinds: list[EntityKind]) -> None:
    for text in CORPUS:
        full = extract_entities(text, NOW)
        assert extract_entities(text, NOW, kinds=kinds) == [e for e in full if e.kind in kinds]


def test_kinds_filter_keeps_conflict_rules() -> None:
    assert extract_entities("4111 1111 1111 1111", NOW, kinds=["phone", "amount"]) == []


def test_empty_kinds_and_empty_text() -> None:
    assert extract_entities(MIXED, NOW, kinds=[]) == []
    assert extract_entities("", NOW) == []


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown entity kinds"):
        extract_entities("today", NOW, kinds=["colour"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "now",
    [NOW.replace(tzinfo=UTC), NOW.replace(tzinfo=timezone(timedelta(hours=-5)))],
)
def test_aware_clock_uses_its_own_date(now: datetime) -> None:
    naive = extract_entities(MIXED + " tomorrow at 3pm", NOW)
    assert extract_entities(MIXED + " tomorrow at 3pm", now) == naive


def test_results_are_entities() -> None:
    entity = extract_entities("tomorrow", NOW)[0]
    assert entity == Entity(kind="date", text="tomorrow", start=0, end=8, value="2026-11-26")
