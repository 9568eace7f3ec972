"""Chunking: sections → chunks with stable ids and metadata, cut along the text's structure.

A chunk never spans two headings; the heading is kept as the chunk's ``section`` and
prefixed to the embedded text for context. Within a section the text is read as blocks —
paragraphs, lists, Markdown tables — and packed into chunks of at most ``size`` characters:

- a block that fits in a chunk is never split; one that does not is split into its list
  items (continuation lines staying with their item), an item into sentences, a sentence
  into lines, and only a line longer than ``size`` is cut between words (by
  langchain-text-splitters' recursive splitter);
- a table that does not fit is split between rows, and every piece starts with the table's
  header row and its ``|---|`` rule. A row is never cut: a header and one row longer than
  ``size`` make a chunk of their own, the only chunks longer than ``size``;
- the last whole sentences or items of a chunk, up to ``overlap`` characters, also start
  the next one; table pieces carry no overlap (their header row gives the context).

langchain's recursive splitter cuts at the last separator that fits, so it ends chunks
inside table rows and list items and never repeats a table header; hence the packing here.

An FAQ entry (a section with a ``key``) is one chunk, never split or merged, with id
``{source}#{key}``. Other chunks have id ``{source}#{n}-{digest}``, the digest of the
source, heading and text: the same content gives the same ids in every run, and editing
one section keeps the ids of the chunks before it.

Metadata comes from the document, overridden key by key by the section (FAQ entries);
:meth:`Chunk.metadata` is what the vector store keeps, with ``audience`` always present.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from cxbot.rag.documents import AUDIENCES, Document

__all__ = ["Chunk", "chunk_document"]

_FIELDS = ("audience", "product", "url", "updated", "tags")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a knowledge document: what is embedded, stored and cited."""

    id: str
    text: str
    source: str
    title: str
    section: str
    page: int | None
    audience: str = AUDIENCES[0]
    """``public`` or ``internal``; internal chunks are never shown to customers."""
    product: str = ""
    url: str = ""
    updated: str = ""
    """ISO date, "" when unknown."""
    tags: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    """Any other metadata of the document or section, as sorted ``(key, value)`` pairs."""

    @property
    def embed_text(self) -> str:
        """What is embedded: the title and heading give a short chunk its context."""
        if (
            self.section
            and self.section != self.title
            and not self.text.startswith(f"{self.section}\n")
        ):
            return f"{self.title} — {self.section}\n{self.text}"
        return f"{self.title}\n{self.text}"

    def metadata(self) -> dict[str, str | int]:
        """Scalar metadata for the vector store: ``audience`` always, the other fields only
        when set (``tags`` comma-separated), then the extra keys."""
        meta: dict[str, str | int] = {
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "audience": self.audience,
        }
        if self.page is not None:
            meta["page"] = self.page
        for key, value in (("product", self.product), ("url", self.url), ("updated", self.updated)):
            if value:
                meta[key] = value
        if self.tags:
            meta["tags"] = ",".join(self.tags)
        for key, value in self.extra:
            meta.setdefault(key, value)
        return meta


# -- blocks ------------------------------------------------------------------------------

_RULE = re.compile(r"\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?")
_ITEM = re.compile(r"\s*(?:[-*+]|\d{1,9}[.)])\s")
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))(\s+)(?=[\"'\u201c\u2018(\[]?[A-Z0-9£$€])"
)


@dataclass(frozen=True, slots=True)
class _Table:
    head: str
    """The header row and the rule under it."""
    rows: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join((self.head, *self.rows))


def _is_rule(line: str) -> bool:
    return "|" in line and "-" in line and _RULE.fullmatch(line.strip()) is not None


def _blocks(text: str) -> list[str | _Table]:
    """Paragraphs and lists (as text, their lines kept) and tables, in order."""
    lines = [line.rstrip() for line in text.split("\n")]
    blocks: list[str | _Table] = []
    paragraph: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "|" in line and i + 1 < len(lines) and _is_rule(lines[i + 1]):
            if paragraph:
                blocks.append("\n".join(paragraph))
                paragraph = []
            end = i + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            rows = tuple(row.strip() for row in lines[i + 2 : end])
            blocks.append(_Table(f"{line.strip()}\n{lines[i + 1].strip()}", rows))
            i = end
            continue
        if line.strip():
            paragraph.append(line)
        elif paragraph:
            blocks.append("\n".join(paragraph))
            paragraph = []
        i += 1
    if paragraph:
        blocks.append("\n".join(paragraph))
    return blocks


def _items(block: str) -> list[str]:
    """A block's lines grouped into list items (with their continuation lines) and the
    lines of text before the first item."""
    items: list[str] = []
    for line in block.split("\n"):
        if items and not _ITEM.match(line):
            items[-1] += "\n" + line
        else:
            items.append(line)
    return items


def _sentences(text: str) -> list[tuple[str, str]]:
    """``(glue, sentence)`` pairs, the glue being the whitespace before the sentence."""
    parts = _SENTENCE_END.split(text)
    pairs = [("", parts[0])]
    for k in range(1, len(parts) - 1, 2):
        pairs.append(("\n" if "\n" in parts[k] else " ", parts[k + 1]))
    return pairs


def _units(text: str, size: int) -> list[tuple[str, str | _Table]]:
    """``(glue, unit)`` pairs: the largest pieces of structure that fit in ``size``."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    words = RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=0, separators=[" ", ""])
    units: list[tuple[str, str | _Table]] = []
    for block in _blocks(text):
        if isinstance(block, _Table) or len(block) <= size:
            units.append(("\n\n", block))
            continue
        for n, item in enumerate(_items(block)):
            glue = "\n\n" if n == 0 else "\n"
            if len(item) <= size:
                units.append((glue, item))
                continue
            for m, (between, sentence) in enumerate(_sentences(item)):
                before = glue if m == 0 else between
                if len(sentence) <= size:
                    units.append((before, sentence))
                    continue
                for j, line in enumerate(sentence.split("\n")):
                    before = before if j == 0 else "\n"
                    if len(line) <= size:
                        units.append((before, line))
                        continue
                    for k, piece in enumerate(words.split_text(line)):
                        units.append((before if k == 0 else " ", piece))
    return units


# -- packing -----------------------------------------------------------------------------


class _Packer:
    """Fills chunks with units in order; see the module docstring for the rules."""

    def __init__(self, size: int, overlap: int) -> None:
        self.size = size
        self.overlap = overlap
        self.chunks: list[str] = []
        self.parts: list[tuple[str, str, bool]] = []
        """``(glue, text, may start the next chunk as overlap)``."""
        self.carried = 0
        """How many of ``parts`` repeat the end of the previous chunk."""

    @staticmethod
    def _join(parts: list[tuple[str, str, bool]]) -> str:
        return "".join((glue if n else "") + text for n, (glue, text, _) in enumerate(parts))

    def _fits(self, glue: str, text: str) -> bool:
        return len(self._join([*self.parts, (glue, text, False)])) <= self.size

    def _flush(self, *, carry: bool) -> None:
        if len(self.parts) > self.carried:
            self.chunks.append(self._join(self.parts))
        kept: list[tuple[str, str, bool]] = []
        if carry:
            for part in reversed(self.parts):
                if not part[2] or len(self._join([part, *kept])) > self.overlap:
                    break
                kept.insert(0, part)
        self.parts = kept
        self.carried = len(kept)

    def text(self, glue: str, text: str) -> None:
        if self.parts and not self._fits(glue, text):
            self._flush(carry=True)
            while self.parts and not self._fits(glue, text):
                self.parts.pop(0)
                self.carried -= 1
        self.parts.append((glue, text, True))

    def table(self, glue: str, table: _Table) -> None:
        if self._fits(glue, table.text):
            self.parts.append((glue, table.text, False))
            return
        if len(table.text) <= self.size or not table.rows:
            self._flush(carry=False)
            self.parts.append((glue, table.text, False))
            return
        rows: list[str] = []
        for row in table.rows:
            if rows and self._fits(glue, "\n".join((table.head, *rows, row))):
                rows.append(row)
                continue
            if rows:
                self.parts.append((glue, "\n".join((table.head, *rows)), False))
                self._flush(carry=False)
            elif self.parts and not self._fits(glue, f"{table.head}\n{row}"):
                self._flush(carry=False)
            rows = [row]
        self.parts.append((glue, "\n".join((table.head, *rows)), False))

    def finish(self) -> list[str]:
        self._flush(carry=False)
        return self.chunks


def _split(text: str, size: int, overlap: int) -> list[str]:
    packer = _Packer(size, overlap)
    for glue, unit in _units(text, size):
        if isinstance(unit, _Table):
            packer.table(glue, unit)
        elif unit.strip():
            packer.text(glue, unit.strip())
    return [chunk.strip() for chunk in packer.finish() if chunk.strip()]


# -- chunks ------------------------------------------------------------------------------


def chunk_document(document: Document, *, size: int, overlap: int) -> list[Chunk]:
    """Split a document's sections into chunks of at most ``size`` characters (see above)."""
    overlap = min(overlap, size // 2)
    chunks: list[Chunk] = []
    for section in document.sections:
        meta = {**document.meta, **(section.meta or {})}
        blank = Chunk(
            id="",
            text="",
            source=document.source,
            title=document.title,
            section=section.heading,
            page=section.page,
            audience=meta.get("audience") or AUDIENCES[0],
            product=meta.get("product", ""),
            url=meta.get("url", ""),
            updated=meta.get("updated", ""),
            tags=tuple(tag for tag in meta.get("tags", "").split(",") if tag),
            extra=tuple(sorted((k, v) for k, v in meta.items() if k not in _FIELDS)),
        )
        if section.key:
            text = section.text.strip()
            chunks.append(replace(blank, id=f"{document.source}#{section.key}", text=text))
            continue
        for piece in _split(section.text, size, overlap):
            digest = hashlib.sha1(
                f"{document.source}\x00{section.heading}\x00{piece}".encode()
            ).hexdigest()[:12]
            chunks.append(
                replace(blank, id=f"{document.source}#{len(chunks)}-{digest}", text=piece)
            )
    return chunks
