"""PII redaction of customer messages before anything is logged, stored or sent to an LLM.

Emails, phone numbers, card numbers (Luhn-checked) and IBANs (checksum) become typed
placeholders. The real values stay available to the turn that needs them (slot filling),
never to the transcript.
"""

from __future__ import annotations

from cxbot.guardrails.base import ALLOW, GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailPlugin
from cxbot.nlu.entities import extract_entities
from cxbot.types import EntityKind

__all__ = ["PLACEHOLDERS", "PiiRedactor", "redact"]

PLACEHOLDERS: dict[EntityKind, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card_number": "[CARD_NUMBER]",
    "iban": "[IBAN]",
}


def redact(text: str, ctx: GuardrailContext) -> tuple[str, list[str]]:
    """The text with PII replaced by placeholders, and the kinds found."""
    found = extract_entities(text, ctx.now, kinds=tuple(PLACEHOLDERS))
    out: list[str] = []
    last = 0
    for entity in found:
        out.append(text[last : entity.start])
        out.append(PLACEHOLDERS[entity.kind])
        last = entity.end
    out.append(text[last:])
    return "".join(out), [e.kind for e in found]


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
    "pii", "input", lambda deps: PiiRedactor(), "Redacts contact, card and account numbers."
)
