"""Rendering one reply for each channel: Markdown, links, length limits, buttons, spoken
forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cxbot.channels import CHANNELS, contains_markdown, render, spoken
from cxbot.config import ChannelsConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ChannelsConfig()
BRANCHES = ("Harbour Street", "Market Square", "Old Town", "Riverside")

ANSWER = (
    "## Lost card\n"
    "**Freeze your card** in the app straight away [1]. Read [our lost card guide]"
    "(https://www.northwind.example/help/lost-card) or visit https://northwind.example/cards.\n"
    "\n"
    "- Call us on 0800 123 4567 — we're open 08:00-20:00\n"
    "- Your replacement costs £0 and arrives on 3 December\n"
    "\n"
    "Your Easy Saver ending 5530: 48250.0 GBP. Your overdraft fee is 39.9% EAR."
)
_PART_LABEL = re.compile(r" \((\d+)/(\d+)\)$")


def _knowledge_texts() -> list[tuple[str, str]]:
    """Every Markdown article of the sample bank, front matter removed: real replies'
    sources, with headings, lists, tables, links and typographic punctuation."""
    texts = []
    for path in sorted((ROOT / "knowledge" / "northwind").rglob("*.md")):
        body = path.read_text(encoding="utf-8")
        body = re.sub(r"\A---\n.*?\n---\n", "", body, flags=re.S)
        texts.append((path.name, body))
    return texts


def _sms_invariants(text: str) -> None:
    rendered = render(text, "sms", CONFIG)
    limit = CONFIG.sms.max_chars
    assert limit is not None
    assert rendered.buttons == ()
    assert 1 <= len(rendered.parts) <= CONFIG.sms.max_parts
    for n, part in enumerate(rendered.parts, 1):
        assert len(part) <= limit, part
        assert not contains_markdown(part), part
        assert "http" not in part and "www." not in part
        assert part.isascii() or set(part) - set(part.encode("ascii", "ignore").decode()) <= {
            "£",
            "€",
            "é",
        }
        if len(rendered.parts) > 1:
            label = _PART_LABEL.search(part)
            assert label is not None, part
            assert (int(label[1]), int(label[2])) == (n, len(rendered.parts))


# -- web ----------------------------------------------------------------------------------
def test_web_keeps_markdown_links_citations_and_shows_buttons() -> None:
    rendered = render(ANSWER, "web", CONFIG, quick_replies=BRANCHES)
    assert rendered.channel == "web"
    assert rendered.parts == (ANSWER,)
    assert rendered.buttons == BRANCHES


# -- sms ----------------------------------------------------------------------------------
def test_sms_is_plain_text_in_labelled_parts_of_160() -> None:
    rendered = render(ANSWER, "sms", CONFIG, quick_replies=BRANCHES)
    text = " ".join(rendered.parts)
    assert len(rendered.parts) == 2
    assert rendered.parts[0].endswith(" (1/2)") and rendered.parts[1].endswith(" (2/2)")
    assert all(len(part) <= 160 for part in rendered.parts)
    assert not contains_markdown(text)
    assert "Freeze your card in the app straight away." in text
    assert "Read our lost card guide or visit our website." in text
    assert "[1]" not in text and "http" not in text
    assert "0800 123 4567 - we're open" in text  # the dash is plain ASCII (GSM-7)
    assert rendered.buttons == ()  # no buttons on SMS: the text names the options


def test_sms_that_fits_is_one_part_without_a_label() -> None:
    rendered = render("Your card is **active**.", "sms", CONFIG)
    assert rendered.parts == ("Your card is active.",)


def test_sms_longer_than_its_parts_is_cut_with_a_mark() -> None:
    rendered = render("word " * 400, "sms", CONFIG)
    assert len(rendered.parts) == CONFIG.sms.max_parts == 6
    assert rendered.parts[-1].endswith("... (6/6)")
    assert all(len(part) <= 160 for part in rendered.parts)


@pytest.mark.parametrize(("name", "text"), _knowledge_texts())
def test_every_knowledge_article_as_sms_keeps_the_invariants(name: str, text: str) -> None:
    _sms_invariants(text)


def test_sms_invariants_hold_for_any_text() -> None:
    # found by the search below: a marker after a separator control character
    for text in ("\x1f> quoted", "a\u2028> b", "\x1c# heading"):
        assert not any(contains_markdown(p) for p in render(text, "sms", CONFIG).parts)
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    markdownish = st.text(
        alphabet=st.sampled_from(list("abc XYZ019*_`#-+>[]()|:.£\n")) | st.characters(),
        max_size=900,
    )

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(markdownish)
    def check(text: str) -> None:
        if not text.strip():
            return
        rendered = render(text, "sms", CONFIG)
        for part in rendered.parts:
            assert len(part) <= 160
            assert not contains_markdown(part), part

    check()


# -- whatsapp -----------------------------------------------------------------------------
def test_whatsapp_uses_its_own_formatting_and_at_most_three_buttons() -> None:
    rendered = render(ANSWER, "whatsapp", CONFIG, quick_replies=BRANCHES)
    (text,) = rendered.parts
    assert "*Freeze your card*" in text and "**" not in text
    assert "*Lost card*" in text
    assert "our lost card guide (https://www.northwind.example/help/lost-card)" in text
    assert "\u2022 Call us" in text
    assert rendered.buttons == ()  # four options: a numbered list instead
    assert text.endswith("1. Harbour Street\n2. Market Square\n3. Old Town\n4. Riverside")
    yes_no = render("Shall I book it?", "whatsapp", CONFIG, quick_replies=("Yes", "No"))
    assert yes_no.buttons == ("Yes", "No")
    assert yes_no.parts == ("Shall I book it?",)


# -- voice --------------------------------------------------------------------------------
def test_voice_speaks_numbers_and_dates_and_names_no_address() -> None:
    rendered = render(ANSWER, "voice", CONFIG, quick_replies=BRANCHES)
    text = " ".join(rendered.parts)
    assert not contains_markdown(text)
    assert "http" not in text and "www" not in text
    assert "visit our website" in text
    assert "8 am to 8 pm" in text
    assert "0 pounds" in text
    assert "the 3rd of December" in text
    assert "ending 5 5 3 0: 48,250 pounds" in text
    assert "39.9 percent" in text
    assert rendered.buttons == ()


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("£1,250.50", "1,250 pounds and 50 pence"),
        ("£1", "1 pound"),
        ("£0.05", "5 pence"),
        ("-642.18 GBP", "minus 642 pounds and 18 pence"),
        ("€20", "20 euros"),
        ("14:30", "2:30 pm"),
        ("09:00", "9 am"),
        ("12:00", "12 noon"),
        ("2026-12-03", "Thursday the 3rd of December 2026"),
        ("on 22 May", "on the 22nd of May"),
        ("11 June", "the 11th of June"),
        ("ending in 4040", "ending in 4 0 4 0"),
        ("10:00-16:00", "10 am to 4 pm"),
    ],
)
def test_spoken_forms(written: str, said: str) -> None:
    assert spoken(written) == said


def test_voice_splits_long_answers_into_unlabelled_utterances() -> None:
    rendered = render("Sentence number one is here. " * 40, "voice", CONFIG)
    assert len(rendered.parts) > 1
    assert all(len(part) <= 600 and not _PART_LABEL.search(part) for part in rendered.parts)


# -- email --------------------------------------------------------------------------------
def test_email_is_the_full_text_with_links_and_no_markdown() -> None:
    rendered = render(ANSWER * 5, "email", CONFIG, quick_replies=BRANCHES)
    (text,) = rendered.parts
    assert not contains_markdown(text)
    assert "our lost card guide (https://www.northwind.example/help/lost-card)" in text
    assert "https://northwind.example/cards" in text
    assert "£0" in text and "08:00" in text  # written forms, as read
    assert rendered.buttons == ()


def test_every_channel_renders_every_reply() -> None:
    for channel in CHANNELS:
        rendered = render("Hello **there**", channel, CONFIG)
        assert rendered.channel == channel and rendered.parts
