"""Every PII kind a customer types stays out of the transcript store, the logs and every
prompt the (stub) LLM server receives, across answers, a handoff and its summary."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.guardrails.base import GuardrailContext
from cxbot.guardrails.input.pii import KINDS, PLACEHOLDERS, redact
from cxbot.testing import FixedClock, StubLLMServer

NOW = datetime(2026, 11, 25, 10, 0)
VALUES = {
    "email": "tom.baker@example.org",
    "phone": "07700 900456",
    "card_number": "4539 1488 0343 6467",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "national_id": "AB 12 34 56 C",
    "address": "27 Marlowe Crescent",
    "postcode": "LS6 2AB",
    "name": "Tom Baker",
}
MESSAGES = [
    f"Hi, my name is {VALUES['name']}. I lost my card {VALUES['card_number']}, what should I do?",
    f"You can email me at {VALUES['email']} or call {VALUES['phone']}.",
    f"My IBAN is {VALUES['iban']} and my NI number is {VALUES['national_id']}.",
    f"I live at {VALUES['address']}, Leeds {VALUES['postcode']}; what are your branch hours?",
    "I want to talk to a human",
]


def _forms(value: str) -> set[str]:
    """The value as typed and without spaces (how a number may be stored or sent)."""
    return {value, value.replace(" ", ""), value.lower()}


def test_no_raw_pii_reaches_store_logs_or_llm(
    tmp_path: Path,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "project"
    shutil.copytree(ingested_project, root)
    with StubLLMServer(model="stub-model") as server:
        env = {
            "CXBOT_LLM__BASE_URL": server.base_url,
            "CXBOT_LLM__MODEL": "stub-model",
            "CXBOT_LLM_API_KEY": "test",
            "CXBOT_LLM__MAX_RETRIES": "0",
        }
        bot = Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env=env)
        try:
            with caplog.at_level(logging.DEBUG):
                replies = [bot.respond("pii-all", message) for message in MESSAGES]
        finally:
            bot.close()
        prompts = json.dumps([request.body for request in server.requests])

    assert replies[-1].handoff is not None
    assert len(server.requests) >= 2  # answers and the handoff summary went to the LLM
    stored = b"".join(p.read_bytes() for p in root.joinpath(".cxbot").rglob("*") if p.is_file())
    stored_text = stored.decode("utf-8", errors="replace")
    for kind, value in VALUES.items():
        for form in _forms(value):
            assert form not in stored_text, f"{kind} in the stores"
            assert form not in caplog.text, f"{kind} in the logs"
            assert form not in prompts, f"{kind} in an LLM prompt"
    for placeholder in ("[EMAIL]", "[PHONE]", "[CARD_NUMBER]", "[IBAN]", "[NATIONAL_ID]", "[NAME]"):
        assert placeholder in stored_text
    assert "[ADDRESS]" in stored_text


def test_profile_names_and_every_kind_are_redacted() -> None:
    ctx = GuardrailContext(
        now=NOW, customer_id="C-1001", embed=lambda text: None, own_names={"Eleanor Whitcombe"}
    )
    text, kinds = redact(
        "Eleanor here. SSN 078-05-1121, NHS 943 476 5919, post to KB1 4QR please", ctx
    )
    assert text == "[NAME] here. SSN [NATIONAL_ID], NHS [NATIONAL_ID], post to [ADDRESS] please"
    assert set(kinds) == {"name", "national_id", "address"}
    assert ctx.vault["[NATIONAL_ID]"] == ["078-05-1121", "943 476 5919"]
    assert set(PLACEHOLDERS) == set(KINDS)


@pytest.mark.parametrize(
    "message",
    [
        "I'm Looking for a mortgage",
        "What is the fee on the 21st of May?",
        "Is 078-05-1120 a valid reference?",  # not a valid SSN
        "My order number is 123 456 7890",  # not a valid NHS number
    ],
)
def test_ordinary_text_is_left_alone(message: str) -> None:
    ctx = GuardrailContext(now=NOW, customer_id=None, embed=lambda text: None)
    assert redact(message, ctx) == (message, [])
