"""Undo the disguises attackers put on instructions, so rules and the classifier see plain text.

- :func:`fold`: NFKC (full-width and mathematical letters), zero-width and soft-hyphen
  characters dropped, Cyrillic/Greek look-alikes mapped to Latin, letters spaced or
  punctuated apart ("i g n o r e", "i.g.n.o.r.e") joined again.
- :func:`unleet`: digits and symbols used as letters ("1gn0r3") read as letters.
- :func:`payloads`: text hidden in base64, hex or rot13, decoded, so the decoded text is
  checked like a message of its own.

Hand-written rather than a confusables library: the table below covers the letters that
render as Latin ones in common fonts, and is a dictionary lookup per character.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

__all__ = ["fold", "payloads", "unleet"]

_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u034f\u180e")
)

# Cyrillic, Greek and other letters that look like Latin ones.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j",
        "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ʏ": "y",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z",
        "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
        "Υ": "Y", "Χ": "X", "ı": "i", "ȷ": "j", "ℓ": "l",
    }
)  # fmt: skip

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)

# Three or more single letters each followed by the same separator: "i g n o r e",
# "i-g-n-o-r-e", "i.g.n.o.r.e", "i _ g _ n".
_SPACED = re.compile(r"(?<!\w)(?:\w(?P<sep>[ .\-_*|/+]{1,3}))(?:\w(?P=sep)){1,}\w(?!\w)")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){10,}\b")
_WORDS = re.compile(r"[a-z]{2,}")
# Frequent English words: decoded text that holds several of them is language, not noise.
_COMMON_WORDS = (
    "the and you your all are for not with this that what from now tell give show print "
    "ignore previous instructions rules system prompt say write reveal any are is of to "
    "in it be me my do as on or an if no"
)
_COMMON = frozenset(_COMMON_WORDS.split())


def fold(text: str) -> str:
    """The text as it reads on screen: compatibility forms, invisible characters,
    look-alike letters and spaced-out words undone (case kept)."""
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_CONFUSABLES)
    # combining marks stacked on letters ("i̶g̶n̶o̶r̶e̶") are dropped
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _SPACED.sub(lambda m: re.sub(r"[ .\-_*|/+]", "", m.group(0)), folded)


def unleet(text: str) -> str:
    """Lower-case text with leetspeak digits and symbols read as letters."""
    return text.lower().translate(_LEET)


def _common_words(text: str) -> int:
    return sum(w in _COMMON for w in _WORDS.findall(text.lower()))


def _english(text: str) -> bool:
    words = _WORDS.findall(text.lower())
    return len(words) >= 3 and _common_words(text) >= max(2, len(words) // 5)


def _printable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(c.isprintable() or c.isspace() for c in text) < 0.95 * len(text):
        return None
    return text


def payloads(text: str) -> list[tuple[str, str]]:
    """``(encoding, decoded text)`` for each base64, hex or rot13 payload that decodes to
    English-looking text."""
    found: list[tuple[str, str]] = []
    for match in _BASE64.finditer(text):
        token = match.group(0)
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        decoded = _printable(raw)
        if decoded and _english(decoded):
            found.append(("base64", decoded))
    for match in _HEX.finditer(text):
        try:
            decoded = _printable(bytes.fromhex(re.sub(r"[ :]", "", match.group(0))))
        except ValueError:
            continue
        if decoded and _english(decoded):
            found.append(("hex", decoded))
    plain = _common_words(text)
    for encoding, decoded in (("rot13", codecs.encode(text, "rot13")), ("reversed", text[::-1])):
        if _common_words(decoded) >= max(2, plain + 2):
            found.append((encoding, decoded))
    return found
