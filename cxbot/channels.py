"""Channel rendering: one canonical reply text → what web, SMS, WhatsApp, voice or email
sends (:class:`~cxbot.types.RenderedReply`).

Pure functions of the text, the channel's settings (``channels.<name>`` in ``cxbot.yaml``)
and the quick replies of the turn. Each step is one small rewrite, applied in this order:
citation markers, links, Markdown, spoken forms, punctuation, whitespace, then the split
into parts and the buttons. Nothing here knows about the turn or the stores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import get_args

from cxbot.config import ChannelConfig, ChannelsConfig
from cxbot.types import Channel, RenderedReply

__all__ = ["CHANNELS", "contains_markdown", "render", "settings_for", "spoken"]

CHANNELS: tuple[Channel, ...] = get_args(Channel)

_CITATION = re.compile(r"\s?\[\d+\](?:\[\d+\])*")
_MD_LINK = re.compile(r"!?\[([^\]\n]+)\]\((\S+?)\)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()]+[^\s<>().,;:!?'\"]")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDER = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_CODE = re.compile(r"`+([^`\n]*)`+")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}\s+(.*?)[ \t]*#*[ \t]*$", re.M)
_BULLET = re.compile(r"^[ \t]{0,6}[-*+]\s+", re.M)
_QUOTE = re.compile(r"^[ \t]{0,3}>\s?", re.M)
_RULE = re.compile(r"^[ \t]{0,3}([-*_])([ \t]*\1){2,}[ \t]*$", re.M)
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?[ \t]*$", re.M)
_LINE_MARKER = re.compile(r"^[ \t]*(?:[-*+>#|]+[ \t]*)+", re.M)
_MARKER_TOKEN = re.compile(r"[-*+>#|]\S*")
_TABLE_ROW = re.compile(r"^[ \t]*\|(.+)\|[ \t]*$", re.M)

_MARKDOWN = (
    _MD_LINK,
    _BOLD,
    _ITALIC_STAR,
    _ITALIC_UNDER,
    re.compile(r"`"),
    re.compile(r"^[ \t]{0,3}#{1,6}\s", re.M),
    _BULLET,
    re.compile(r"^[ \t]{0,3}>", re.M),
    _TABLE_SEPARATOR,
)

_ASCII = str.maketrans(
    {
        "\u2014": "-",
        "\u2013": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2022": "-",
        "\u00a0": " ",
        "\u2192": "->",
    }
)


def settings_for(channel: Channel, config: ChannelsConfig) -> ChannelConfig:
    """The rendering settings of ``channel``."""
    match channel:
        case "web":
            return config.web
        case "sms":
            return config.sms
        case "whatsapp":
            return config.whatsapp
        case "voice":
            return config.voice
        case "email":
            return config.email


def contains_markdown(text: str) -> bool:
    """Whether ``text`` has Markdown syntax: emphasis, code, headings, links, bullets,
    quotes or table rules."""
    return any(pattern.search(text) for pattern in _MARKDOWN)


def render(
    text: str,
    channel: Channel,
    config: ChannelsConfig,
    *,
    quick_replies: Sequence[str] = (),
) -> RenderedReply:
    """``text`` as ``channel`` sends it. ``quick_replies`` (a flow's choices, yes/no) become
    buttons where the channel has enough of them, a numbered list where it has too few, and
    nothing where it has none (the text already names the options)."""
    settings = settings_for(channel, config)
    buttons: tuple[str, ...] = ()
    if quick_replies and settings.buttons:
        if len(quick_replies) <= settings.buttons:
            buttons = tuple(quick_replies)
        else:
            listed = "\n".join(f"{n}. {option}" for n, option in enumerate(quick_replies, 1))
            text = f"{text}\n\n{listed}"
    body = _rewrite(text, settings, config.site_name)
    return RenderedReply(channel, _split(body, settings), buttons)


# -- the rewrites -------------------------------------------------------------------------
def _rewrite(text: str, settings: ChannelConfig, site_name: str) -> str:
    if not settings.citations:
        text = _CITATION.sub("", text)
    text = _links(text, settings, site_name)
    if settings.format == "whatsapp":
        text = _whatsapp(text)
    elif settings.format == "plain":
        text = _plain(text)
        for _ in range(3):  # stripping can expose more (``***a***``)
            if not contains_markdown(text):
                break
            text = _plain(text)
        if contains_markdown(text):
            text = _LINE_MARKER.sub("", re.sub(r"[*_`\[\]]", "", text))
    if settings.spoken:
        text = spoken(text)
    if settings.ascii_punctuation:
        text = text.translate(_ASCII).replace("\u2026", "...")
    return _tidy(text)


def _links(text: str, settings: ChannelConfig, site_name: str) -> str:
    if settings.links and settings.format == "markdown":
        return text
    if settings.links:
        text = _MD_LINK.sub(lambda m: f"{m[1]} ({m[2]})", text)
        return text

    def label(match: re.Match[str]) -> str:
        shown = match[1]
        return site_name if _URL.fullmatch(shown) else shown

    text = _MD_LINK.sub(label, text)
    return _URL.sub(site_name, text)


def _table_rows(text: str) -> str:
    text = _TABLE_SEPARATOR.sub("", text)
    return _TABLE_ROW.sub(
        lambda m: ", ".join(cell.strip() for cell in m[1].split("|") if cell.strip()), text
    )


_ODD_SPACE = re.compile(r"[^\S\n]")
"""Whitespace other than a newline (tabs, \x1c-\x1f, \u2028…): read as a space, so a
Markdown marker after one is still at the start of its line."""


def _plain(text: str) -> str:
    text = _table_rows(_ODD_SPACE.sub(" ", text))
    text = _RULE.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _CODE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    text = _ITALIC_STAR.sub(r"\1", text)
    return _ITALIC_UNDER.sub(r"\1", text)


def _whatsapp(text: str) -> str:
    text = _table_rows(_ODD_SPACE.sub(" ", text))
    text = _RULE.sub("", text)
    text = _CODE.sub(r"\1", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _HEADING.sub(r"*\1*", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("\u2022 ", text)
    return _BOLD.sub(r"*\2*", text)


def _tidy(text: str) -> str:
    # "\n" only: splitlines() also breaks at \x1c-\x1e, \x85 and \u2028, which would make
    # a ">" after one the start of a (Markdown) line the plain-text passes never saw
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- spoken forms -------------------------------------------------------------------------
_UNITS = {
    "£": ("pound", "pounds", "penny", "pence"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "$": ("dollar", "dollars", "cent", "cents"),
    "USD": ("dollar", "dollars", "cent", "cents"),
}
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
_SYMBOL_AMOUNT = re.compile(
    rf"(?<![\w.])([-\u2212])?([£€$])\s?([-\u2212])?({_NUMBER})(?:\.(\d{{1,2}}))?\b"
)
_CODE_AMOUNT = re.compile(
    rf"(?<![\w.,])([-\u2212])?({_NUMBER})(?:\.(\d{{1,2}}))?\s?(GBP|EUR|USD)\b"
)
_TIME_RANGE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\s?[-\u2013]\s?([01]?\d|2[0-4]):([0-5]\d)\b")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_MONTH = re.compile(rf"\b([1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+({'|'.join(_MONTHS)})\b")
_PERCENT = re.compile(r"(\d)\s?%")
_ENDING = re.compile(
    r"\b(ending(?: in)?|last four digits|account number|sort code)\s+(\d[\d -]{2,}\d)"
)


def _grouped(digits: str) -> str:
    return f"{int(digits.replace(',', '')):,}"


def _money(sign: str | None, whole: str, cents: str | None, unit: str) -> str:
    one, many, small, smalls = _UNITS[unit]
    pounds = int(whole.replace(",", ""))
    pence = int((cents or "0").ljust(2, "0"))
    said: list[str] = []
    if pounds or not pence:
        said.append(f"{_grouped(whole)} {one if pounds == 1 else many}")
    if pence:
        said.append(f"{pence} {small if pence == 1 else smalls}")
    return ("minus " if sign else "") + " and ".join(said)


def _clock(hour: int, minute: int) -> str:
    if hour in (0, 24) and minute == 0:
        return "midnight"
    if hour == 12 and minute == 0:
        return "12 noon"
    suffix = "am" if hour < 12 or hour == 24 else "pm"
    shown = hour % 12 or 12
    return f"{shown} {suffix}" if minute == 0 else f"{shown}:{minute:02d} {suffix}"


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _iso_date(match: re.Match[str]) -> str:
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return match[0]
    return f"{day:%A} the {_ordinal(day.day)} of {day:%B} {day.year}"


def spoken(text: str) -> str:
    """``text`` as a voice should read it: amounts in words of currency, 12-hour times,
    dates with ordinals, "percent", card and account digits one by one."""
    text = _SYMBOL_AMOUNT.sub(lambda m: _money(m[1] or m[3], m[4], m[5], m[2]), text)
    text = _CODE_AMOUNT.sub(lambda m: _money(m[1], m[2], m[3], m[4]), text)
    text = _TIME_RANGE.sub(
        lambda m: f"{_clock(int(m[1]), int(m[2]))} to {_clock(int(m[3]), int(m[4]))}", text
    )
    text = _TIME.sub(lambda m: _clock(int(m[1]), int(m[2])), text)
    text = _ISO_DATE.sub(_iso_date, text)
    text = _DAY_MONTH.sub(lambda m: f"the {_ordinal(int(m[1]))} of {m[2]}", text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = _ENDING.sub(lambda m: f"{m[1]} {' '.join(ch for ch in m[2] if ch.isdigit())}", text)
    text = re.sub(r"\s&\s", " and ", text)
    return re.sub(r"\be\.g\.", "for example", text)


# -- parts ----------------------------------------------------------------------------------
def _split(text: str, settings: ChannelConfig) -> tuple[str, ...]:
    limit = settings.max_chars
    if limit is None or len(text) <= limit:
        return (text,) if text else ()
    count = 1
    while True:
        label = len(f" ({count}/{count})") if settings.part_labels else 0
        room = limit - label
        parts = _pack(text, room)
        if len(parts) <= count or not settings.part_labels:
            break
        count = len(parts)
    if len(parts) > settings.max_parts:
        parts = parts[: settings.max_parts]
        more = "..." if settings.ascii_punctuation else "\u2026"
        last = parts[-1]
        if len(last) + len(more) > room:
            last = last[: room - len(more)].rstrip()
        parts[-1] = last + more
    if settings.part_labels:
        total = len(parts)
        parts = [f"{part} ({n}/{total})" for n, part in enumerate(parts, 1)]
    return tuple(parts)


def _pack(text: str, room: int) -> list[str]:
    """Words packed greedily into pieces of at most ``room`` characters (a word longer
    than that is cut); line breaks inside a piece are kept."""
    parts: list[str] = []
    current = ""
    for token in re.findall(r"\S+|\n+", text):
        if token.startswith("\n"):
            if current:
                current += "\n"
            continue
        while len(token) > room:
            if current:
                parts.append(current.rstrip())
                current = ""
            parts.append(token[:room])
            token = token[room:]
        joiner = "" if not current or current.endswith("\n") else " "
        if len(current) + len(joiner) + len(token) > room:
            head, _, carried = current.rstrip().rpartition(" ")
            if _MARKER_TOKEN.fullmatch(token) and head and len(carried) + len(token) < room:
                # a part never starts with what reads as a list marker, quote or heading
                parts.append(head)
                current = f"{carried} {token}"
            else:
                parts.append(current.rstrip())
                current = token
        else:
            current += joiner + token
    if current.strip():
        parts.append(current.rstrip())
    return [p for p in parts if p]
