"""Questions → grounded answers citing the right documents (offline: extractive answers)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.conversation.events import BotUttered
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.prompts import ReplyKey
from cxbot.testing import FixedClock
from cxbot.types import Reply

NOW = datetime(2026, 11, 25, 10, 0)


@pytest.fixture(scope="module")
def rag_bot(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
) -> Iterator[Assistant]:
    """One warmed-up offline assistant for the module (each test uses its own conversation)."""
    root = tmp_path_factory.mktemp("retrieval") / "project"
    shutil.copytree(ingested_project, root)
    bot = Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env={})
    yield bot
    bot.close()


def _sources(reply: Reply) -> list[str]:
    return [c.source for c in reply.citations]


FEES_ABROAD = {
    "transfers/international-transfers.md",
    "fees/foreign-transaction-fees.md",
    "fees/account-fees-by-account-type.md",
    "fees/tariff-of-charges.pdf",
}

CASES = [
    ("I lost my card, what should I do?", {"cards/lost-or-stolen-card.md"}),
    ("How much does it cost to send money abroad?", FEES_ABROAD),
    ("What is the fee for an international payment?", FEES_ABROAD),
    ("Is Old Town open on Saturdays?", {"branches/branch-locations-and-opening-hours.md"}),
    ("How do I change my PIN?", {"cards/change-your-pin.md"}),
    ("How do I freeze my debit card?", {"cards/freeze-and-unfreeze-card.md"}),
    ("How do I dispute a card payment?", {"disputes/disputing-a-card-payment.md"}),
    ("How do I make a complaint?", {"help/complaints-process.md"}),
    (
        "What is the fee for an arranged overdraft?",
        {"fees/overdrafts-and-overdraft-fees.md", "fees/tariff-of-charges.pdf"},
    ),
    (
        "Can I overpay my mortgage without a charge?",
        {"mortgages/overpayments-and-early-repayment-charges.md"},
    ),
    ("How do I report a phishing scam call?", {"security/phishing-and-scam-calls.md"}),
    ("What happens to the accounts of someone who died?", {"help/bereavement-support.md"}),
    # the HTML page and the PDF are retrievable too
    ("Are assistance dogs allowed?", {"branches/accessibility.html"}),
    ("How much is a bank reference letter?", {"fees/tariff-of-charges.pdf"}),
]


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[q for q, _ in CASES])
def test_question_cites_the_expected_document(
    rag_bot: Assistant, question: str, expected: set[str]
) -> None:
    reply = rag_bot.respond(f"retrieval-{question}", question)

    assert reply.route == "rag"
    cited = _sources(reply)
    assert expected & set(cited), cited
    knowledge = rag_bot.root / rag_bot.config.knowledge.dir
    assert all((knowledge / source).is_file() for source in cited)
    assert "[1]" in reply.text
    assert reply.text != rag_bot.deps.prompts.reply(ReplyKey.DONT_KNOW)


def test_branch_opening_hours_question_is_answered_not_booked(rag_bot: Assistant) -> None:
    reply = rag_bot.respond("retrieval-old-town-hours", "When is the Old Town branch open?")

    assert reply.route == "rag"
    assert "branches/branch-locations-and-opening-hours.md" in _sources(reply)


def test_pdf_citation_names_its_page(rag_bot: Assistant) -> None:
    reply = rag_bot.respond("retrieval-pdf-page", "How much is a bank reference letter?")

    pdf = [c for c in reply.citations if c.source == "fees/tariff-of-charges.pdf"]
    assert pdf
    assert pdf[0].title == "Northwind Bank Tariff of Charges (page 2)"
    assert "Bank reference letter £10" in reply.text


def test_off_topic_question_gets_dont_know_without_citations(rag_bot: Assistant) -> None:
    reply = rag_bot.respond("retrieval-off-topic", "What's the capital of Mongolia?")

    assert reply.route == "rag"
    assert reply.citations == ()
    assert "don't know" in reply.text
    assert reply.text == rag_bot.deps.prompts.reply(ReplyKey.DONT_KNOW)
    said = [e for e in reply.events if isinstance(e, BotUttered)]
    assert len(said) == 1 and said[0].failed


def test_profile_fact_joins_a_first_person_question(rag_bot: Assistant) -> None:
    reply = rag_bot.respond("retrieval-c1001-card", "Is my card frozen?", customer_id="C-1001")

    assert reply.route == "rag"
    facts = {c.source: c.snippet for c in reply.citations if c.source.startswith("profile: ")}
    assert facts == {"profile: card_status": "frozen"}
    assert "card status: frozen" in reply.text
    # knowledge passages are still cited beside the fact
    assert any(not s.startswith("profile: ") for s in _sources(reply))


def test_profile_fact_is_the_customers_own(rag_bot: Assistant) -> None:
    reply = rag_bot.respond("retrieval-c1002-card", "Is my card frozen?", customer_id="C-1002")

    facts = {c.source: c.snippet for c in reply.citations if c.source.startswith("profile: ")}
    assert facts == {"profile: card_status": "active"}
    assert "card status: active" in reply.text
    assert "frozen" not in facts.values()


def test_no_profile_facts_without_a_customer(rag_bot: Assistant) -> None:
    # an account question from an anonymous session: who is it? (identity.ask_customer_id)
    reply = rag_bot.respond("retrieval-anonymous-card", "Is my card frozen?")
    assert reply.route == "flow" and "customer number" in reply.text
    assert not any(s.startswith("profile: ") for s in _sources(reply))
    # how to do something is public: answered from the articles, with no profile facts
    reply = rag_bot.respond("retrieval-anonymous-how", "How do I freeze my debit card?")
    assert reply.route == "rag"
    assert not any(s.startswith("profile: ") for s in _sources(reply))
    assert "From your profile" not in reply.text


def test_consent_gated_field_needs_the_consent(
    make_bot: Callable[..., Assistant], rag_bot: Assistant
) -> None:
    gated = make_bot(env={"CXBOT_PROFILES__CONSENT_GATED__CARD_STATUS": "marketing"})
    assert dict(gated.config.profiles.consent_gated) == {"card_status": "marketing"}
    question = "Is my card frozen?"

    # C-1002 gave marketing consent: the field is used
    consented = gated.respond("gated-c1002", question, customer_id="C-1002")
    assert "profile: card_status" in _sources(consented)
    assert "card status: active" in consented.text

    # C-1001 did not: the field is left out, though without the gate it is used
    ungated = rag_bot.respond("ungated-c1001", question, customer_id="C-1001")
    assert "profile: card_status" in _sources(ungated)
    refused = gated.respond("gated-c1001", question, customer_id="C-1001")
    assert refused.route == "rag"
    assert "profile: card_status" not in _sources(refused)
    assert "card status" not in refused.text
    assert refused.citations  # the knowledge answer is still given


def test_table_rows_read_as_sentences() -> None:
    from cxbot.rag.answer import _sentences

    text = (
        "Our fees are below.\n\n| Account | Monthly fee |\n|---|---|\n"
        "| **Premier** | £15 |\n| Everyday | £0 |\n\nFees are taken monthly."
    )
    assert _sentences(text) == [
        "Our fees are below.",
        "Account: Premier; Monthly fee: £15.",
        "Account: Everyday; Monthly fee: £0.",
        "Fees are taken monthly.",
    ]
