"""What each use of the profile may see: the allowlist per use case (answers, handoff
summary, agent assist, slot prefill) and consent gates that hold in every use."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.config import PROFILE_USES, ProfileAllowlist, ProfilesConfig, load_config
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import ConfigError
from cxbot.profiles import SQLiteProfileStore, visible_facts
from cxbot.testing import FixedClock
from cxbot.types import Reply

NOW = datetime(2026, 11, 25, 10, 0)

CUSTOMERS = {
    "customers": [
        {
            "id": "K-1",
            "name": "Ada Lovelace",
            "segment": "premier",
            "preferred_branch": "Harbour Street",
            "card_status": "active",
            "offers": "a fee-free overdraft up to 500 GBP",
            "email": "ada@example.com",
            "consent": {"marketing": True},
        },
        {
            "id": "K-2",
            "name": "Grace Hopper",
            "segment": "student",
            "preferred_branch": "Riverside",
            "card_status": "frozen",
            "offers": "a student overdraft upgrade",
            "email": "grace@example.com",
            "consent": {"marketing": False},
        },
        {
            "id": "K-3",
            "name": "Alan Turing",
            "segment": "everyday",
            "card_status": "active",
            "offers": "a savings rate boost",
        },
    ]
}
OFFERS = {c["id"]: c["offers"] for c in CUSTOMERS["customers"]}
DESCRIPTIONS = """\
  descriptions:
    card_status: what is the status of my card, is my debit card frozen or blocked
    preferred_branch: which is my branch, my local or home branch
    segment: what type of customer am I, my account package or tier
    offers: what offers, deals or promotions do I have, special offers for me
"""


def _write_config(path: Path, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cxbot.yaml").write_text(text, encoding="utf-8")
    return path


# -- configuration -----------------------------------------------------------------------
def test_a_list_applies_to_every_use(tmp_path: Path) -> None:
    root = _write_config(tmp_path, "profiles:\n  allowlist: [name, card_status]\n")
    profiles = load_config(root, env={}).profiles

    for use in PROFILE_USES:
        assert profiles.fields_for(use) == ("name", "card_status")


def test_the_default_allowlist_is_the_same_for_every_use() -> None:
    profiles = ProfilesConfig()  # type: ignore[call-arg]
    default = ("name", "segment", "preferred_branch", "card_status", "accounts")

    assert {profiles.fields_for(use) for use in PROFILE_USES} == {default}


def test_a_mapping_sets_fields_per_use_and_a_missing_use_reads_none(tmp_path: Path) -> None:
    root = _write_config(
        tmp_path,
        "profiles:\n"
        "  allowlist:\n"
        "    rag: [name, card_status]\n"
        "    handoff: [name, segment, preferred_branch]\n"
        "    assist: [segment]\n",
    )
    profiles = load_config(root, env={}).profiles

    assert profiles.fields_for("rag") == ("name", "card_status")
    assert profiles.fields_for("handoff") == ("name", "segment", "preferred_branch")
    assert profiles.fields_for("assist") == ("segment",)
    assert profiles.fields_for("flows") == ()
    assert profiles.allowlist == ProfileAllowlist(
        rag=("name", "card_status"),
        handoff=("name", "segment", "preferred_branch"),
        assist=("segment",),
    )


def test_an_unknown_use_names_the_key_line_and_valid_uses(tmp_path: Path) -> None:
    root = _write_config(
        tmp_path,
        "company: Acme\nprofiles:\n  allowlist:\n    rag: [name]\n    handof: [name]\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})

    error = info.value
    assert error.file == str(root / "cxbot.yaml")
    assert error.line == 5
    assert "profiles.allowlist.handof" in error.reason
    assert error.fix is not None
    assert "did you mean 'handoff'" in error.fix
    assert all(use in error.fix for use in PROFILE_USES)


def test_a_use_can_be_set_from_the_environment(tmp_path: Path) -> None:
    root = _write_config(tmp_path, "profiles:\n  allowlist:\n    rag: [name]\n")
    profiles = load_config(
        root, env={"CXBOT_PROFILES__ALLOWLIST__HANDOFF": "name, segment"}
    ).profiles

    assert profiles.fields_for("handoff") == ("name", "segment")
    assert profiles.fields_for("rag") == ("name",)


# -- consent, in every use ---------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProfileStore]:
    fixture = tmp_path / "customers.json"
    fixture.write_text(json.dumps(CUSTOMERS), encoding="utf-8")
    profiles = SQLiteProfileStore(tmp_path / "profiles.sqlite", fixture)
    yield profiles
    profiles.close()


def test_a_consent_gated_field_needs_the_consent_in_every_use(
    store: SQLiteProfileStore,
) -> None:
    profiles = ProfilesConfig.model_validate(
        {
            "allowlist": {use: ["name", "offers", "card_status"] for use in PROFILE_USES},
            "consent_gated": {"offers": "marketing"},
        }
    )
    for use in PROFILE_USES:
        facts = {}
        for customer_id in OFFERS:
            profile = store.get(customer_id)
            assert profile is not None
            facts[customer_id] = visible_facts(
                profile, profiles.fields_for(use), profiles.consent_gated
            )
        # K-1 consented; K-2 refused; K-3 never answered (no consent is no consent)
        assert facts["K-1"]["offers"] == OFFERS["K-1"], use
        assert "offers" not in facts["K-2"] and "offers" not in facts["K-3"], use
        assert facts["K-2"]["card_status"] == "frozen", use  # ungated fields still show


def test_a_field_outside_a_uses_allowlist_is_not_visible_to_it(
    store: SQLiteProfileStore,
) -> None:
    profiles = ProfilesConfig.model_validate(
        {"allowlist": {"rag": ["card_status"], "handoff": ["name", "segment"]}}
    )
    profile = store.get("K-1")
    assert profile is not None

    assert visible_facts(profile, profiles.fields_for("rag"), {}) == {"card_status": "active"}
    assert visible_facts(profile, profiles.fields_for("handoff"), {}) == {
        "name": "Ada Lovelace",
        "segment": "premier",
    }
    assert visible_facts(profile, profiles.fields_for("flows"), {}) == {}


# -- in turns ----------------------------------------------------------------------------
PER_USE = (
    "profiles:\n"
    "  fixture: customers.json\n"
    "  allowlist:\n"
    "    rag: [name, card_status, offers]\n"
    "    handoff: [name, preferred_branch, offers]\n"
    "  consent_gated:\n"
    "    offers: marketing\n" + DESCRIPTIONS
)
ONE_LIST = (
    "profiles:\n"
    "  fixture: customers.json\n"
    "  allowlist: [name, segment, preferred_branch, card_status, offers]\n"
    "  consent_gated:\n"
    "    offers: marketing\n" + DESCRIPTIONS
)


def _bot(root: Path, profiles_yaml: str, embedder: SentenceTransformerEmbedder) -> Assistant:
    (root / "customers.json").write_text(json.dumps(CUSTOMERS), encoding="utf-8")
    config = (root / "cxbot.yaml").read_text(encoding="utf-8")
    replaced = re.sub(r"^profiles:\n(?:[ \t]+.*\n|\n)*", profiles_yaml + "\n", config, flags=re.M)
    assert replaced != config
    (root / "cxbot.yaml").write_text(replaced, encoding="utf-8")
    return Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env={})


@pytest.fixture(scope="module")
def bots(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
) -> Iterator[dict[str, Assistant]]:
    """Two assistants over the same customers: allowlist per use, and one list for all."""
    made: dict[str, Assistant] = {}
    for name, profiles_yaml in (("per_use", PER_USE), ("one_list", ONE_LIST)):
        root = tmp_path_factory.mktemp(name) / "project"
        shutil.copytree(ingested_project, root)
        made[name] = _bot(root, profiles_yaml, embedder)
    yield made
    for bot in made.values():
        bot.close()


def _profile_citations(reply: Reply) -> dict[str, str]:
    return {c.source: c.snippet for c in reply.citations if c.source.startswith("profile: ")}


def _everything_shown(reply: Reply) -> str:
    """All a customer or agent could read from a reply: text, citations, summary."""
    parts = [reply.text, *(f"{c.source} {c.title} {c.snippet}" for c in reply.citations)]
    if reply.handoff is not None:
        parts += [reply.handoff.as_text(), reply.handoff.model_dump_json()]
    return "\n".join(parts)


@pytest.mark.parametrize("bot_name", ["per_use", "one_list"])
def test_answers_cite_consented_offers_only(bots: dict[str, Assistant], bot_name: str) -> None:
    bot = bots[bot_name]

    consented = bot.respond(f"{bot_name}-offers-k1", "What offers do I have?", customer_id="K-1")
    assert consented.route == "rag"
    assert _profile_citations(consented) == {"profile: offers": OFFERS["K-1"]}
    assert OFFERS["K-1"] in consented.text

    for customer_id in ("K-2", "K-3"):
        refused = bot.respond(
            f"{bot_name}-offers-{customer_id}", "What offers do I have?", customer_id=customer_id
        )
        assert "profile: offers" not in _profile_citations(refused)
        assert OFFERS[customer_id] not in _everything_shown(refused)


def test_answers_use_only_the_rag_allowlist(bots: dict[str, Assistant]) -> None:
    question = "What type of customer am I?"
    # one list for every use: the segment joins the answer and is cited
    listed = bots["one_list"].respond("segment-listed", question, customer_id="K-1")
    assert _profile_citations(listed) == {"profile: segment": "premier"}

    # per use: the segment is not on the rag list, so the answer neither uses nor cites it
    per_use = bots["per_use"].respond("segment-per-use", question, customer_id="K-1")
    assert "profile: segment" not in _profile_citations(per_use)
    assert "segment: premier" not in per_use.text

    # while a field on the rag list is used and cited as `profile: field`
    card = bots["per_use"].respond("card-per-use", "Is my card frozen?", customer_id="K-2")
    assert _profile_citations(card) == {"profile: card_status": "frozen"}
    assert "card status: frozen" in card.text


def test_the_handoff_summary_shows_the_handoff_allowlist(bots: dict[str, Assistant]) -> None:
    reply = bots["per_use"].respond("handoff-k1", "I want to talk to a human", customer_id="K-1")

    assert reply.route == "handoff" and reply.handoff is not None
    customer = reply.handoff.customer
    assert customer is not None
    assert (customer.id, customer.name, customer.segment) == ("K-1", "Ada Lovelace", None)
    assert customer.facts == {"preferred_branch": "Harbour Street", "offers": OFFERS["K-1"]}
    text = reply.handoff.as_text()
    assert "Customer: Ada Lovelace (K-1)" in text
    assert f"Profile: preferred branch: Harbour Street; offers: {OFFERS['K-1']}" in text
    assert "card_status" not in reply.handoff.model_dump_json()  # on the rag list only

    listed = bots["one_list"].respond("handoff-k1", "I want to talk to a human", customer_id="K-1")
    assert listed.handoff is not None and listed.handoff.customer is not None
    assert listed.handoff.customer.segment == "premier"
    assert listed.handoff.customer.facts["card_status"] == "active"


@pytest.mark.parametrize("bot_name", ["per_use", "one_list"])
@pytest.mark.parametrize("customer_id", ["K-2", "K-3"])
def test_the_handoff_summary_leaves_out_unconsented_fields(
    bots: dict[str, Assistant], bot_name: str, customer_id: str
) -> None:
    bot = bots[bot_name]
    conversation = f"handoff-{bot_name}-{customer_id}"
    bot.respond(conversation, "Is my card frozen?", customer_id=customer_id)
    # a later turn without the id still hands over the known customer
    reply = bot.respond(conversation, "get me an agent")

    assert reply.handoff is not None and reply.handoff.customer is not None
    assert reply.handoff.customer.id == customer_id
    assert "offers" not in reply.handoff.customer.facts
    assert OFFERS[customer_id] not in _everything_shown(reply)
