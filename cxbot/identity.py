"""Step-up identity verification: who the turn talks to, and checking it before account data.

A customer id the caller authenticated (``respond(..., authenticated=True)``, a signed
session token in ``cxbot serve``) is verified at once. A customer id that is only a claim
(``authenticated=False``, or ``identity.trust_customer_id: false``) must be verified by the
customer before an account answer or action: the assistant asks for the profile fields of
``identity.check_fields`` one by one (date of birth, then postcode), checks the whole set
(never saying which answer was wrong), and after ``identity.max_attempts`` failed sets locks
verification for the customer and hands over to a person. A verification holds for
``identity.verification_ttl_s``.

A session with no customer id at all (an anonymous web chat) is asked for the customer
number first (``identity.ask_customer_id``), then the same fields. A number no profile has is
not revealed: the other fields are asked all the same and the set fails. Once verified, the
conversation is that customer's (``CustomerIdentified``).

This is a small stage of its own rather than a flow (``flows/``): a flow confirms before
its action and keeps each answer as a slot in the state and the event log, while the
answers here must never be stored, shown back or sent to a model, and a wrong one must not
be named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from cxbot.conversation.events import (
    CustomerIdentified,
    Event,
    VerificationFailed,
    VerificationLocked,
    VerificationRequested,
    VerificationSucceeded,
)
from cxbot.conversation.state import ConversationState, VerificationFrame

if TYPE_CHECKING:
    from cxbot.config import IdentityConfig
    from cxbot.profiles.store import Profile

__all__ = [
    "CUSTOMER_NUMBER",
    "WITHHELD",
    "Identity",
    "Step",
    "answer_value",
    "asks_how_to",
    "could_be_answer",
    "customer_numbers",
    "identify",
    "matches",
    "steps",
    "verified_until",
    "verify",
]

WITHHELD = "[verification answer]"
"""What the conversation records instead of a verification answer."""

CUSTOMER_NUMBER = "customer_id"
"""The step that asks an anonymous session for its customer number (the profile id)."""

_MONTHS = {
    name[:3]: n
    for n, name in enumerate(
        (
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
        ),
        1,
    )
}
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\b")
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH},?\s+(\d{{4}})\b", re.I
)
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b")
_NUMBER = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{0,3})[\s\-_./#:]*(\d(?:[\s\-]?\d){2,})(?!\d)")
"""A customer number: up to three letters, then digits (spaces, dashes, dots between)."""


_HOW_TO = re.compile(
    r"\W*(hi|hello|hey)?\W*(how (do|can|would|should|could) (i|we|you)|how to|"
    r"where (do|can|should) i|what (should|do|can) i do|what do i need)\b"
    r"|.*\bwhat (should|do|can) i do\W*$",
    re.I | re.S,
)


def asks_how_to(text: str) -> bool:
    """Whether ``text`` asks how to do something (a procedure the public articles answer
    for anyone), not for account data."""
    return _HOW_TO.match(text) is not None


def could_be_answer(text: str) -> bool:
    """Whether ``text`` may answer an identity question: every answer (customer number,
    date of birth, postcode) has digits, and a sentence of eight words or more without any
    is something else, such as a fraud report."""
    return len(text.split()) < 8 or any(c.isdigit() for c in text)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a turn talks to: the customer id given or on record, and whether it is known to
    be them (authenticated by the caller, or verified by the customer and not expired)."""

    customer_id: str | None
    verified: bool


@dataclass(frozen=True, slots=True)
class Step:
    """What the verification stage decided for one message: the events, the reply text
    key (``ask``, ``reask``, ``failed``, ``locked``, ``verified``) and the field asked."""

    events: tuple[Event, ...]
    outcome: Literal["ask", "reask", "failed", "locked", "verified"]
    field: str | None = None
    pending: str | None = None


def verified_until(state: ConversationState, now: datetime) -> bool:
    """Whether the conversation's step-up verification still holds at ``now``."""
    if state.verified_until is None:
        return False
    until = datetime.fromisoformat(state.verified_until)
    return _comparable(now, until) < until


def _comparable(now: datetime, other: datetime) -> datetime:
    if (now.tzinfo is None) == (other.tzinfo is None):
        return now
    return now.replace(tzinfo=other.tzinfo) if now.tzinfo is None else now.replace(tzinfo=None)


def _date_in(text: str) -> date | None:
    for pattern, order in (
        (_ISO, "ymd"),
        (_NUMERIC, "dmy"),
        (_DAY_MONTH, "dMy"),
        (_MONTH_DAY, "Mdy"),
    ):
        found = pattern.search(text)
        if found is None:
            continue
        parts = dict(zip(order, found.groups(), strict=True))
        month = _MONTHS[parts["M"][:3].lower()] if "M" in parts else int(parts["m"])
        try:
            return date(int(parts["y"]), month, int(parts["d"]))
        except ValueError:
            return None
    return None


def _normal(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def answer_value(field: str, text: str) -> str | None:
    """The value of ``field`` the customer's message gives, normalised, or ``None`` when
    the message gives none (it is then asked again, not counted as wrong)."""
    if field == "date_of_birth":
        found = _date_in(text)
        return found.isoformat() if found else None
    if field == "postcode":
        match = _POSTCODE.search(text.upper())
        return f"{match[1]}{match[2]}" if match else None
    value = _normal(text)
    return value or None


def matches(field: str, value: str, profile: Profile) -> bool:
    """Whether an answer's normalised ``value`` is the profile's ``field``."""
    recorded = profile.fields.get(field)
    if recorded is None:
        return False
    if field == "date_of_birth":
        found = _date_in(str(recorded))
        return found is not None and found.isoformat() == value
    return _normal(str(recorded)) == _normal(value)


def customer_numbers(text: str) -> tuple[str, ...]:
    """The customer ids a message may give, most likely first, read leniently (case,
    spaces and dashes ignored): ``"it's c 1001"`` → ``("C-1001", "C1001", "1001")``."""
    found: list[str] = []
    for match in _NUMBER.finditer(text):
        letters, digits = match[1].upper(), re.sub(r"[\s\-]", "", match[2])
        if letters:
            found += [f"{letters}-{digits}", f"{letters}{digits}"]
        found.append(digits)
    return tuple(dict.fromkeys(found))[:6]


def steps(config: IdentityConfig, *, anonymous: bool) -> tuple[str, ...]:
    """The questions of one verification: the customer number first for a session with no
    customer id, then ``config.check_fields``."""
    return (CUSTOMER_NUMBER, *config.check_fields) if anonymous else config.check_fields


def _next_field(fields: tuple[str, ...], current: str) -> str | None:
    index = fields.index(current) if current in fields else len(fields)
    return fields[index + 1] if index + 1 < len(fields) else None


def start(customer_id: str | None, fields: tuple[str, ...], pending: str | None) -> Step:
    """Ask for the first field; ``pending`` is the request to answer once verified.
    ``customer_id`` is ``None`` when the first field is the customer number."""
    return Step(
        (VerificationRequested(customer_id, fields[0], True, pending),),
        "ask",
        fields[0],
        pending,
    )


def identify(text: str, *, find: Callable[[str], Profile | None], config: IdentityConfig) -> Step:
    """An anonymous customer's answer to the customer number: ask the first check field
    next whether or not a profile has that number. A number no profile has is kept as
    ``None`` with ``matched=False``: the set fails at its end, and nothing tells the
    customer that it was the number."""
    numbers = customer_numbers(text)
    if not numbers:
        return Step((), "reask", CUSTOMER_NUMBER)
    profile = next((p for n in numbers if (p := find(n)) is not None), None)
    following = config.check_fields[0]
    customer = profile.id if profile is not None else None
    return Step(
        (VerificationRequested(customer, following, profile is not None),), "ask", following
    )


def verify(
    frame: VerificationFrame,
    text: str,
    *,
    customer_id: str | None,
    profile: Profile | None,
    config: IdentityConfig,
    now: datetime,
    earlier_failures: int,
    fields: tuple[str, ...] | None = None,
) -> Step:
    """The customer's answer to ``frame.step``: ask the next field, or check the set —
    verified, failed (ask again from the first field) or locked after
    ``config.max_attempts`` (this conversation's attempts or ``earlier_failures``, the
    customer's failures within the lockout window, whichever is more; a customer locked
    out already is never verified).

    ``fields`` are the questions in order (default ``config.check_fields``); when they
    start with :data:`CUSTOMER_NUMBER` the session had no customer id: ``customer_id`` is
    the one its number gave (``None``: no profile has it, and ``profile`` is ``None``), a
    success identifies that customer and a failure asks for the number again."""
    fields = fields or config.check_fields
    field = frame.step
    assert field is not None
    value = answer_value(field, text)
    if value is None:
        return Step((), "reask", field)
    matched = frame.matched and profile is not None and matches(field, value, profile)
    following = _next_field(fields, field)
    if following is not None:
        return Step((VerificationRequested(customer_id, following, matched),), "ask", following)
    anonymous = fields[0] == CUSTOMER_NUMBER
    if matched and customer_id is not None and earlier_failures < config.max_attempts:
        expires = now + timedelta(seconds=config.verification_ttl_s)
        succeeded = VerificationSucceeded(customer_id, expires.isoformat())
        # a new customer resets the verification, so the success follows their id
        events = (CustomerIdentified(customer_id), succeeded) if anonymous else (succeeded,)
        return Step(events, "verified", pending=frame.pending)
    attempt = frame.attempts + 1
    failed = VerificationFailed(customer_id, attempt)
    if max(attempt, earlier_failures + 1) >= config.max_attempts:
        until = now + timedelta(seconds=config.lockout_s)
        return Step((failed, VerificationLocked(customer_id, attempt, until.isoformat())), "locked")
    first = fields[0]
    again = VerificationRequested(None if anonymous else customer_id, first, True)
    return Step((failed, again), "failed", first)
