"""Rule-based entity extraction: dates, times, phones, emails, card numbers, IBANs, amounts.

:func:`extract_entities` runs one small extractor per kind, each yielding candidate
:class:`~cxbot.types.Entity` spans, then keeps a non-overlapping subset:

- priority first: card numbers, IBANs and emails beat phones, phones beat amounts, and
  amounts beat dates and times (so a card number is never also a phone or an amount, and
  a phone is never also a date or a time);
- within the same priority the longer span wins ("next Tuesday" over "Tuesday").

Normalisation (see :class:`~cxbot.types.Entity`):

- ``date`` ``YYYY-MM-DD``, resolved against the caller's ``now`` (its own local date; an
  aware ``now`` is not converted) and preferring the future: a bare, ``on`` or ``next``
  weekday is the next occurrence after today, ``this <weekday>`` may be today, ``the 3rd``
  is the next 3rd (today allowed), ``3 December`` without a year is this year or next year
  if already past, ``next week`` is Monday of next week. Numeric dates are day-first (UK).
- ``time`` ``HH:MM`` (24h). Without am/pm a bare hour uses a business-hours heuristic:
  1-7 mean pm, 8-11 mean am, 12 means noon; a leading zero or an hour of 13-23 is literal.
  Bare numbers are never times except after "at" ("at 4" -> 16:00) or before "in the
  morning/afternoon/evening" ("7 in the evening" -> 19:00). The span of a time
  never includes the word "at", and "morning"/"afternoon"/"evening" (09:00/14:00/17:00)
  count only after "in the", "this", "today", "tomorrow" or a weekday.
- ``amount`` ``"<number> <ISO>"``: the number as written minus thousands separators
  (``£1,250.50`` -> ``1250.50 GBP``, ``£50`` -> ``50 GBP``).
- ``phone`` E.164. Numbers the phonenumbers metadata calls valid, plus complete-looking
  numbers written with ``+`` or a trunk ``0`` and at least 10 digits (this admits reserved
  fictional ranges such as Ofcom's ``07700 900xxx``).
- ``email`` lower-cased; ``card_number`` digits only (13-19 digits, Luhn-valid);
  ``iban`` compact upper-case (checksum and country format validated).

No network access and no dateparser: every rule is a precompiled regular expression.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Final, cast, get_args

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

from cxbot.types import Entity, EntityKind

__all__ = ["extract_entities"]

# ---------------------------------------------------------------------------- vocabulary

_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS: Final[dict[str, int]] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_NUMBER_WORDS: Final[dict[str, int]] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_MINUTE_WORDS: Final[dict[str, int]] = {
    "five": 5, "ten": 10, "quarter": 15, "twenty": 20, "twenty-five": 25, "twenty five": 25,
    "half": 30,
}  # fmt: skip
_PART_OF_DAY: Final[dict[str, str]] = {"morning": "09:00", "afternoon": "14:00", "evening": "17:00"}
_CURRENCIES: Final[dict[str, str]] = {
    "£": "GBP", "€": "EUR", "$": "USD", "gbp": "GBP", "eur": "EUR", "usd": "USD",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "euro": "EUR", "euros": "EUR",
    "dollar": "USD", "dollars": "USD", "bucks": "USD",
}  # fmt: skip
# Nouns after an ordinal that show it is not a day of the month ("the 3rd floor").
_NOT_A_DAY_AFTER: Final = (
    "floor|time|times|attempt|card|payment|instal+ment|option|item|line|one|person|place|"
    "party|page|step|try|class|quarter|year|month|week|day|birthday|anniversary|edition|"
    "grade|century|round|account|number|digit|character|letter"
)

_WEEKDAY_RE: Final = "|".join(_WEEKDAYS)
_MONTH_RE: Final = "|".join(sorted(_MONTHS, key=len, reverse=True))
_HOUR_WORD_RE: Final = "|".join(w for w in _NUMBER_WORDS if w not in ("a", "an"))
_ORDINAL_RE: Final = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR_RE: Final = r"(?:,?\s+(?P<year>\d{4})(?!\d))?"
_AMPM_RE: Final = r"\s*(?P<ampm>[ap])\.?m\b\.?"
_DAYPART_SUFFIX_RE: Final = r"(?:\s+in\s+the\s+(?P<daypart>morning|afternoon|evening)\b)?"

# -------------------------------------------------------------------------------- patterns

_I: Final = re.IGNORECASE

_EMAIL: Final = re.compile(r"(?<![\w.+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_CARD: Final = re.compile(r"(?<!\d)(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![ -]?\d)")
_IBAN: Final = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", _I)
_NUMBER: Final = r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d,]*\d)"
_AMOUNTS: Final = (
    re.compile(r"(?P<cur>[£€$])\s?" + _NUMBER),
    re.compile(r"\b(?P<cur>GBP|EUR|USD)\s?" + _NUMBER, _I),
    re.compile(
        r"(?<![\d.,£€$])"
        + _NUMBER
        + r"\s?(?P<cur>pounds?|quid|gbp|euros?|eur|dollars?|usd|bucks)\b",
        _I,
    ),
)

_TODAY: Final = re.compile(r"\b(?:(?P<after>(?:the\s+)?day\s+after\s+)?tomorrow|today)\b", _I)
_WEEKDAY: Final = re.compile(
    rf"\b(?:(?P<mod>next|this|coming|last)\s+)?(?P<wd>{_WEEKDAY_RE})\b", _I
)
_NEXT_WEEK: Final = re.compile(r"\bnext\s+week\b", _I)
_RELATIVE: Final = re.compile(
    r"\bin\s+(?P<n>\d{1,3}|a|an|" + _HOUR_WORD_RE + r")\s+(?P<unit>day|week|month)s?\b", _I
)
_ISO_DATE: Final = re.compile(
    r"(?<![\d/.-])(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})(?!\d|[/.-]\d)"
)
_NUMERIC_DATE: Final = re.compile(
    r"(?<![\d/.-])(?P<day>\d{1,2})(?P<sep>[/.-])(?P<month>\d{1,2})(?P=sep)"
    r"(?P<year>\d{4}|\d{2})(?!\d|[/.-]\d)"
)
_DAY_MONTH: Final = re.compile(
    rf"\b(?:(?:{_WEEKDAY_RE})\s+)?(?:the\s+)?{_ORDINAL_RE}(?:\s+of)?\s+"
    rf"(?P<month>{_MONTH_RE})\b{_YEAR_RE}",
    _I,
)
_MONTH_DAY: Final = re.compile(
    rf"\b(?:(?:{_WEEKDAY_RE})\s+)?(?P<month>{_MONTH_RE})\s+(?:the\s+)?{_ORDINAL_RE}\b{_YEAR_RE}", _I
)
_ORDINAL_DAY: Final = re.compile(
    rf"\b(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)\b(?!\s+(?:{_NOT_A_DAY_AFTER})\b)", _I
)

_TIME_AMPM: Final = re.compile(r"\b(?P<h>\d{1,2})(?:[:.](?P<m>[0-5]\d))?" + _AMPM_RE, _I)
_TIME_DAYPART: Final = re.compile(
    r"\b(?P<h>\d{1,2})\s+in\s+the\s+(?P<daypart>morning|afternoon|evening)\b", _I
)
_TIME_COLON: Final = re.compile(
    r"(?<![\d:.])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])" + _DAYPART_SUFFIX_RE, _I
)
_TIME_OCLOCK: Final = re.compile(
    rf"\b(?P<h>\d{{1,2}}|{_HOUR_WORD_RE})\s*o['\u2019]?\s?clock\b" + _DAYPART_SUFFIX_RE, _I
)
_TIME_NAMED: Final = re.compile(r"\b(?:12\s+)?(?P<name>noon|midday|midnight)\b", _I)
_TIME_PAST_TO: Final = re.compile(
    r"\b(?:(?P<past>half|(?:a\s+)?quarter|five|ten|twenty(?:[- ]five)?)\s+past"
    r"|(?P<to>(?:a\s+)?quarter)\s+to)"
    rf"\s+(?P<h>\d{{1,2}}(?!\d)|(?:{_HOUR_WORD_RE})\b)"
    rf"(?:{_AMPM_RE})?" + _DAYPART_SUFFIX_RE,
    _I,
)
_TIME_AT: Final = re.compile(
    r"\bat\s+(?P<h>\d{1,2})(?:\.(?P<m>[0-5]\d))?"
    r"(?![\d%]|[:.,]\d|\s*(?:[ap]\.?m\b|o['\u2019]?\s?clock\b))"
    r"(?P<rest>" + _DAYPART_SUFFIX_RE + r")(?P<next>\s+(?-i:[A-Z])[a-z]*)?",
    _I,
)
_PART_OF_DAY_RE: Final = re.compile(
    rf"\b(?:in\s+the|this|today|tomorrow|{_WEEKDAY_RE})\s+(?P<part>morning|afternoon|evening)\b", _I
)
# Capitalised words allowed right after "at <hour>" (anything else looks like an address).
_AT_FOLLOWERS: Final = frozenset(
    (*_WEEKDAYS, *_MONTHS, "today", "tomorrow", "tonight", "please", "then", "and", "or", "on")
)

# ------------------------------------------------------------------------------- helpers

_TIER: Final[dict[str, int]] = {
    "card_number": 0, "iban": 0, "email": 0, "phone": 1, "amount": 2, "date": 3, "time": 3,
    "branch": 4, "advisor": 4,
}  # fmt: skip
_ALL_KINDS: Final[frozenset[str]] = frozenset(get_args(EntityKind))
_NAME_KINDS: Final = frozenset({"branch", "advisor"})


def _entity(kind: EntityKind, text: str, span: tuple[int, int], value: str) -> Entity:
    start, end = span
    return Entity(kind=kind, text=text[start:end], start=start, end=end, value=value)


def _number(word: str) -> int:
    word = word.lower()
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for last in (day.day, 30, 29, 28):
        found = _safe_date(year, month, min(day.day, last))
        if found is not None:
            return found
    raise AssertionError("unreachable: every month has 28 days")  # pragma: no cover


def _next_day_of_month(today: date, day: int) -> date | None:
    """The first date on or after ``today`` whose day of the month is ``day``."""
    for offset in range(13):
        first = _add_months(today.replace(day=1), offset)
        found = _safe_date(first.year, first.month, day)
        if found is not None and found >= today:
            return found
    return None


def _upcoming(today: date, month: int, day: int, year: str | None) -> date | None:
    """``day month [year]``; without a year, this year or the next one if already past."""
    if year is not None:
        return _safe_date(int(year), month, day)
    for candidate_year in range(today.year, today.year + 9):  # 29 February needs a leap year
        found = _safe_date(candidate_year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _clock(hour: int, minute: int, meridiem: str | None, *, literal: bool = False) -> str | None:
    """``HH:MM`` for an hour and an ``a``/``p`` meridiem (or None: business-hours heuristic)."""
    if not 0 <= minute <= 59:
        return None
    if meridiem is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    elif not literal and 1 <= hour <= 7:
        hour += 12
    return f"{hour:02d}:{minute:02d}" if 0 <= hour <= 23 else None


def _meridiem(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    if groups.get("ampm"):
        return groups["ampm"].lower()
    if groups.get("daypart"):
        return "a" if groups["daypart"].lower() == "morning" else "p"
    return None


# ------------------------------------------------------------------------------ extractors


def _emails(text: str) -> Iterator[Entity]:
    for match in _EMAIL.finditer(text):
        yield _entity("email", text, match.span(), match.group().lower())


def _cards(text: str) -> Iterator[Entity]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if luhn.is_valid(digits):
            yield _entity("card_number", text, match.span(), digits)


def _valid_iban_prefix(candidate: str) -> str | None:
    """The longest prefix of whole space-separated tokens that is a valid IBAN, if any.

    The pattern may swallow the words after an IBAN ("... 7654 32 please"), hence the trimming.
    """
    while not stdnum_iban.is_valid(candidate):
        if " " not in candidate:
            return None
        candidate = candidate.rsplit(" ", 1)[0]
    return candidate


def _ibans(text: str) -> Iterator[Entity]:
    position = 0
    while (match := _IBAN.search(text, position)) is not None:
        found = _valid_iban_prefix(match.group())
        if found is None:
            position = match.start() + 1
            continue
        end = match.start() + len(found)
        yield _entity("iban", text, (match.start(), end), stdnum_iban.compact(found))
        position = end


def _phones(text: str, region: str) -> Iterator[Entity]:
    found: list[tuple[int, int]] = []
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        found.append((match.start, match.end))
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield _entity("phone", text, (match.start, match.end), e164)
    lenient = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
    for match in lenient:
        raw = match.raw_string.lstrip("(")
        complete = raw.startswith(("+", "0")) and sum(c.isdigit() for c in raw) >= 10
        overlaps = any(match.start < end and start < match.end for start, end in found)
        if complete and not overlaps and phonenumbers.is_possible_number(match.number):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            yield _entity("phone", text, (match.start, match.end), e164)


def _amounts(text: str) -> Iterator[Entity]:
    for pattern in _AMOUNTS:
        for match in pattern.finditer(text):
            number = match.group("num").replace(",", "")
            currency = _CURRENCIES[match.group("cur").lower()]
            yield _entity("amount", text, match.span(), f"{number} {currency}")


_DateRule = Callable[[re.Match[str], date], date | None]


def _resolve_today(match: re.Match[str], today: date) -> date | None:
    if match.group().lower() == "today":
        return today
    return today + timedelta(days=2 if match.group("after") else 1)


def _resolve_weekday(match: re.Match[str], today: date) -> date | None:
    delta = (_WEEKDAYS.index(match.group("wd").lower()) - today.weekday()) % 7
    modifier = (match.group("mod") or "").lower()
    if modifier == "last":
        return today - timedelta(days=(7 - delta) if delta else 7)
    if modifier == "this":
        return today + timedelta(days=delta)
    return today + timedelta(days=delta or 7)


def _resolve_next_week(match: re.Match[str], today: date) -> date | None:
    return today + timedelta(days=7 - today.weekday())


def _resolve_relative(match: re.Match[str], today: date) -> date | None:
    count, unit = _number(match.group("n")), match.group("unit").lower()
    if unit == "month":
        return _add_months(today, count)
    return today + timedelta(days=count * (7 if unit == "week" else 1))


def _resolve_numeric(match: re.Match[str], today: date) -> date | None:
    year = int(match.group("year"))
    year += 2000 if year < 100 else 0
    return _safe_date(year, int(match.group("month")), int(match.group("day")))


def _resolve_named_month(match: re.Match[str], today: date) -> date | None:
    month = match.group("month")
    if month == "may" and match.re is _MONTH_DAY:  # the modal verb: "we may 2 ..."
        return None
    return _upcoming(today, _MONTHS[month.lower()], int(match.group("day")), match.group("year"))


def _resolve_ordinal(match: re.Match[str], today: date) -> date | None:
    return _next_day_of_month(today, int(match.group("day")))


_DATE_RULES: Final[tuple[tuple[re.Pattern[str], _DateRule], ...]] = (
    (_TODAY, _resolve_today),
    (_WEEKDAY, _resolve_weekday),
    (_NEXT_WEEK, _resolve_next_week),
    (_RELATIVE, _resolve_relative),
    (_ISO_DATE, _resolve_numeric),
    (_NUMERIC_DATE, _resolve_numeric),
    (_DAY_MONTH, _resolve_named_month),
    (_MONTH_DAY, _resolve_named_month),
    (_ORDINAL_DAY, _resolve_ordinal),
)


def _dates(text: str, today: date) -> Iterator[Entity]:
    for pattern, resolve in _DATE_RULES:
        for match in pattern.finditer(text):
            found = resolve(match, today)
            if found is not None:
                yield _entity("date", text, match.span(), found.isoformat())


_TimeRule = Callable[[re.Match[str]], str | None]


def _time_ampm(match: re.Match[str]) -> str | None:
    minute = match.groupdict().get("m") or "0"
    return _clock(int(match.group("h")), int(minute), _meridiem(match))


def _time_colon(match: re.Match[str]) -> str | None:
    hour = match.group("h")
    return _clock(int(hour), int(match.group("m")), _meridiem(match), literal=hour.startswith("0"))


def _time_oclock(match: re.Match[str]) -> str | None:
    return _clock(_number(match.group("h")), 0, _meridiem(match))


def _time_named(match: re.Match[str]) -> str | None:
    return "00:00" if match.group("name").lower() == "midnight" else "12:00"


def _time_past_to(match: re.Match[str]) -> str | None:
    hour = _number(match.group("h"))
    if match.group("past"):
        words = match.group("past").lower().removeprefix("a").strip()
        return _clock(hour, _MINUTE_WORDS[words], _meridiem(match))
    on_the_hour = _clock(hour, 0, _meridiem(match))
    if on_the_hour is None:
        return None
    minutes = (int(on_the_hour[:2]) * 60 - 15) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _time_at(match: re.Match[str]) -> str | None:
    following = (match.group("next") or "").strip().lower()
    if following and following not in _AT_FOLLOWERS:
        return None  # "at 10 Downing Street"
    hour = int(match.group("h"))
    return _clock(hour, int(match.group("m") or 0), _meridiem(match)) if hour >= 1 else None


_TIME_RULES: Final[tuple[tuple[re.Pattern[str], _TimeRule], ...]] = (
    (_TIME_AMPM, _time_ampm),
    (_TIME_DAYPART, _time_ampm),
    (_TIME_COLON, _time_colon),
    (_TIME_OCLOCK, _time_oclock),
    (_TIME_NAMED, _time_named),
    (_TIME_PAST_TO, _time_past_to),
)


def _times(text: str) -> Iterator[Entity]:
    for pattern, resolve in _TIME_RULES:
        for match in pattern.finditer(text):
            value = resolve(match)
            if value is not None:
                yield _entity("time", text, match.span(), value)
    for match in _TIME_AT.finditer(text):  # the span starts at the hour, not at "at"
        value = _time_at(match)
        if value is not None:
            yield _entity("time", text, (match.start("h"), match.end("rest")), value)
    for match in _PART_OF_DAY_RE.finditer(text):
        yield _entity("time", text, match.span("part"), _PART_OF_DAY[match.group("part").lower()])


def _name_patterns(kind: str, names: Sequence[str]) -> list[tuple[re.Pattern[str], str]]:
    """Whole-word patterns for each canonical name; a person is also found by a first name
    or surname that no one else on the list shares."""
    patterns = [(re.compile(rf"\b{re.escape(n)}\b", re.I), n) for n in names]
    if kind == "advisor":
        parts = Counter(p.lower() for n in names for p in n.split())
        for name in names:
            for part in name.split():
                if parts[part.lower()] == 1 and len(part) > 2:
                    patterns.append((re.compile(rf"\b{re.escape(part)}\b"), name))
    return patterns


def _names(text: str, names: Mapping[str, Sequence[str]]) -> Iterator[Entity]:
    for kind, values in names.items():
        for pattern, canonical in _name_patterns(kind, values):
            for match in pattern.finditer(text):
                yield _entity(cast(EntityKind, kind), text, match.span(), canonical)


# ---------------------------------------------------------------------------------- public


def _resolve_overlaps(candidates: list[Entity]) -> list[Entity]:
    ranked = sorted(candidates, key=lambda e: (_TIER[e.kind], e.start - e.end, e.start))
    kept: list[Entity] = []
    for entity in ranked:
        if all(entity.end <= other.start or other.end <= entity.start for other in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e.start)


def extract_entities(
    text: str,
    now: datetime,
    *,
    kinds: Collection[EntityKind] | None = None,
    region: str = "GB",
    names: Mapping[str, Sequence[str]] | None = None,
) -> list[Entity]:
    """Entities found in ``text``, sorted by ``start`` and non-overlapping.

    ``now`` is the caller's clock (naive or aware; its own date is "today"). ``kinds``
    restricts the result; the answer is always the unrestricted answer filtered by kind, so
    a card number still hides the phone-like digits inside it. ``region`` is the default
    country for phone numbers written without ``+``. ``names`` lists canonical names per
    kind (``{"branch": [...], "advisor": [...]}``), matched case-insensitively as whole
    words (advisors also by an unshared first name or surname, capitalised). Raises
    ``ValueError`` on an unknown kind.
    """
    wanted = set(_ALL_KINDS if kinds is None else kinds)
    unknown = wanted - _ALL_KINDS
    unknown |= set(names or {}) - _NAME_KINDS
    if unknown:
        raise ValueError(f"unknown entity kinds: {sorted(unknown)}")
    if not wanted or not text:
        return []
    # Only kinds of the same or higher priority can hide a wanted kind, so skip the rest.
    deepest = max(_TIER[kind] for kind in wanted)
    extractors: list[tuple[int, Callable[[], Iterator[Entity]]]] = [
        (0, lambda: _emails(text)),
        (0, lambda: _cards(text)),
        (0, lambda: _ibans(text)),
        (1, lambda: _phones(text, region.upper())),
        (2, lambda: _amounts(text)),
        (3, lambda: _dates(text, now.date())),
        (3, lambda: _times(text)),
        (4, lambda: _names(text, names or {})),
    ]
    candidates = [entity for tier, run in extractors if tier <= deepest for entity in run()]
    return [entity for entity in _resolve_overlaps(candidates) if entity.kind in wanted]
