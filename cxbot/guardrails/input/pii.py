"""PII redaction of customer messages before anything is logged, stored or sent to an LLM.

Kinds and how each is recognised:

- ``email``, ``phone`` (``phonenumbers``), ``card_number`` (Luhn), ``iban`` (checksum):
  the entity extractor of :mod:`cxbot.nlu.entities`;
- ``national_id``: UK National Insurance numbers (format and the excluded prefixes), US
  social security numbers (``python-stdnum``), NHS numbers (check digit);
- ``address``: UK postcodes, and house number + street name + street type;
- ``name``: the current customer's names from their profile, and a name the customer
  gives ("my name is …", "this is …", "I'm …" followed by capitalised words).

Each value becomes a placeholder (``[EMAIL]``, ``[NATIONAL_ID]``). The values stay in the turn's
:class:`~cxbot.guardrails.base.GuardrailContext` ``vault`` for the stages of that turn that
need them, and are never stored, logged or sent anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cxbot.guardrails.base import ALLOW, GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailPlugin
from cxbot.nlu.entities import extract_entities
from cxbot.types import EntityKind

__all__ = ["KINDS", "PLACEHOLDERS", "PLUGIN", "PiiRedactor", "find_pii", "redact"]

KINDS = ("email", "phone", "card_number", "iban", "national_id", "address", "name")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}
_ENTITY_KINDS: tuple[EntityKind, ...] = ("email", "phone", "card_number", "iban")

_NINO = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    re.I,
)
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_NHS = re.compile(r"\b\d{3}\s\d{3}\s\d{4}\b")
_POSTCODE = re.compile(
    r"\b(GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b", re.I
)
_STREET = re.compile(
    r"\b\d{1,4}[a-z]?,?\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|"
    r"Close|Drive|Dr|Way|Crescent|Place|Pl|Gardens|Court|Ct|Terrace|Grove|Hill|Square|Sq|"
    r"Row|Mews|Walk|Park|Rise|View|Parade|Green|Boulevard|Blvd)\b\.?"
)
_SELF_NAMED = re.compile(
    r"\b(?i:my name is|my name's|name is|i am|i'm|call me|regards,?)\s+"
    r"((?:[A-Z][a-z'\u2019-]+)(?:\s+[A-Z][a-z'\u2019-]+){0,2})"
)
# Capitalised words after "I'm" that are not names ("I'm Happy to", "This is Urgent").
_NOT_NAME_WORDS = (
    "a an the not sure happy sorry trying looking just calling writing interested unable "
    "able still new moving going having waiting urgent about in on at from with very really "
    "northwind monday tuesday wednesday thursday friday saturday sunday january february "
    "march april may june july august september october november december"
)
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())


def _ssn_valid(value: str) -> bool:
    from stdnum.us import ssn

    return bool(ssn.is_valid(value))


def _nhs_valid(value: str) -> bool:
    from stdnum.gb import nhs

    return bool(nhs.is_valid(value))


def find_pii(text: str, ctx: GuardrailContext) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of every PII value in ``text``, sorted and non-overlapping."""
    spans: list[tuple[int, int, str]] = [
        (e.start, e.end, e.kind) for e in extract_entities(text, ctx.now, kinds=_ENTITY_KINDS)
    ]
    spans += [(m.start(), m.end(), "national_id") for m in _NINO.finditer(text)]
    spans += [(m.start(), m.end(), "national_id") for m in _SSN.finditer(text) if _ssn_valid(m[0])]
    spans += [(m.start(), m.end(), "national_id") for m in _NHS.finditer(text) if _nhs_valid(m[0])]
    spans += [(m.start(), m.end(), "address") for m in _STREET.finditer(text)]
    spans += [(m.start(), m.end(), "address") for m in _POSTCODE.finditer(text)]
    spans += list(_names(text, ctx))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            continue
        kept.append(span)
    return kept


def _names(text: str, ctx: GuardrailContext) -> Iterator[tuple[int, int, str]]:
    for name in ctx.own_names:
        for part in {name, *name.split()}:
            if len(part) < 3:
                continue
            for match in re.finditer(rf"\b{re.escape(part)}\b", text, re.I):
                yield match.start(), match.end(), "name"
    for match in _SELF_NAMED.finditer(text):
        words = match.group(1).split()
        while words and words[-1].lower() in _NOT_NAMES:
            words.pop()
        if not words or words[0].lower() in _NOT_NAMES:
            continue
        start = match.start(1)
        yield start, start + len(" ".join(words)), "name"


def redact(text: str, ctx: GuardrailContext) -> tuple[str, list[str]]:
    """The text with PII replaced by placeholders, and the kinds found; the values go to
    ``ctx.vault`` (placeholder → values in order) for the rest of the turn."""
    out: list[str] = []
    kinds: list[str] = []
    last = 0
    for start, end, kind in find_pii(text, ctx):
        placeholder = PLACEHOLDERS[kind]
        ctx.vault.setdefault(placeholder, []).append(text[start:end])
        out += [text[last:start], placeholder]
        kinds.append(kind)
        last = end
    out.append(text[last:])
    return "".join(out), kinds


class PiiRedactor:
    """Rewrites the message with PII replaced by ``[EMAIL]``, ``[PHONE]``, …"""

    name = "pii"

    def warm_up(self) -> None:
        return None

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        redacted, kinds = redact(text, ctx)
        if not kinds:
            return ALLOW
        return Verdict("rewrite", "redacted " + ", ".join(sorted(set(kinds))), 1.0, redacted)


PLUGIN = GuardrailPlugin(
    "pii", "input", lambda deps: PiiRedactor(), "Redacts contact, card, id and address data."
)
