"""Profanity in replies: masked by whole word after normalisation, never inside other words."""

from __future__ import annotations

from datetime import datetime

import pytest

from cxbot.guardrails.base import GuardrailContext
from cxbot.guardrails.output.profanity import ProfanityGuard, WordList, load_word_list


def ctx() -> GuardrailContext:
    def no_embed(text: str) -> object:
        raise AssertionError("the profanity guardrail does not embed")

    return GuardrailContext(
        now=datetime(2026, 11, 25, 10),
        customer_id=None,
        embed=no_embed,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("What the fuck happened?", "What the f*** happened?"),
        ("That is bullshit.", "That is b*******."),
        ("sh1t, that was quick", "s***, that was quick"),
        ("$hit happens", "$*** happens"),
        ("Shiiiiit!", "S*******!"),
        ("a fuuuucking delay", "a f********* delay"),
        ("What a bastard", "What a b******"),
    ],
)
def test_profanity_is_masked_in_place(text: str, masked: str) -> None:
    verdict = ProfanityGuard().check(text, ctx())
    assert verdict.action == "rewrite"
    assert verdict.text == masked


@pytest.mark.parametrize(
    "text",
    [
        "Our Scunthorpe branch is open on Saturdays.",
        "I'm the bank's assistant; I can assess your class of account.",
        "Essex, Middlesex and Sussex customers pay the same fees.",
        "The Dickens Road cash machine accepts deposits.",
        "Your cockpit-style dashboard in the app shows a peacock icon.",
        "Pass the document to our Cockburn Street office.",
        "Hancock & Co is a retailer name that may appear on statements.",
        "Please check the matter in the app.",
    ],
)
def test_words_that_contain_a_listed_word_are_left_alone(text: str) -> None:
    assert ProfanityGuard().check(text, ctx()).action == "allow"


def test_block_mode_blocks_the_reply() -> None:
    verdict = ProfanityGuard("block").check("Well, damn.", ctx())
    assert verdict.action == "block" and verdict.text is None


def test_the_shipped_list_loads_comments_and_prefixes() -> None:
    words = load_word_list()
    assert words.matches("fucking") and words.matches("motherfucker")
    assert words.matches("ass") and not words.matches("assistant")
    custom = WordList(["# a comment", "heck*", "darn"])
    assert custom.matches("HECKING") and custom.matches("darn") and not custom.matches("darned")
