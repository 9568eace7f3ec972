"""Readers of knowledge documents: Markdown, HTML (main text only), PDF (per page), text, and
FAQ files (JSON Lines, CSV).

Each reader returns a :class:`Document` of sections with heading and page metadata; the
chunker splits sections further, except FAQ entries, which stay whole. HTML boilerplate
(navigation, cookie banners, footers) is removed with trafilatura; PDF text comes from pypdf
page by page.

Metadata. A document carries string metadata (``Document.meta``); an FAQ entry carries its
own (``Section.meta``), which overrides the document's for that entry. The keys every chunk
understands:

- ``audience``: ``public`` (the default) or ``internal``; internal chunks are for staff and
  never shown to customers. Any other value is an :class:`~cxbot.errors.IngestError`.
- ``product``, ``url``: free text.
- ``updated``: an ISO date (or date and time), normalised to its ISO string.
- ``tags``: a list, stored as one comma-separated string.

Other keys are kept as strings (a list becomes ``a, b``). Where they come from: Markdown
YAML front matter (``---`` … ``---`` at the top; ``title`` there overrides the H1), HTML
``<meta name="audience|product|updated|tags" content=…>`` and ``<link rel="canonical">``
(``url``), and the extra fields or columns of an FAQ file. ``source``, ``title``,
``section`` and ``page`` are set by cxbot and cannot be given as metadata.

FAQ files hold one entry per line (``.jsonl``: a JSON object) or per row (``.csv``: a header
row, then entries; UTF-8, a byte-order mark is accepted; header names are case-insensitive;
tags separated by ``;``). ``question`` and ``answer`` are required, ``id`` is optional; blank
lines are skipped. Each entry is one section: heading = the question, text =
``question\\nanswer``, ``key`` = the id (or one derived from the question), so its chunk id
does not depend on the order of the entries. ``.json`` is not a knowledge format.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

from cxbot.errors import IngestError

__all__ = ["AUDIENCES", "SUFFIXES", "Document", "Section", "read_document"]

SUFFIXES = (".md", ".markdown", ".html", ".htm", ".pdf", ".txt", ".jsonl", ".csv")

AUDIENCES = ("public", "internal")
"""Valid ``audience`` values; the first is the default."""

_RESERVED = frozenset({"source", "title", "section", "page"})
"""Chunk metadata keys cxbot sets itself (front matter's ``title`` is the document's title)."""


@dataclass(frozen=True, slots=True)
class Section:
    """A part of a document under one heading (or one PDF page, or one FAQ entry)."""

    text: str
    heading: str = ""
    page: int | None = None
    meta: Mapping[str, str] | None = field(default=None, hash=False)
    """Metadata of this section's chunks, overriding the document's key by key."""
    key: str = ""
    """Set for an FAQ entry: the section is one chunk, never split or merged, whose id is
    ``{source}#{key}``."""


@dataclass(frozen=True, slots=True)
class Document:
    """One file of the knowledge folder, read into titled sections with metadata."""

    source: str
    """Path relative to the knowledge folder, with forward slashes."""
    title: str
    kind: str
    """``markdown``, ``html``, ``pdf``, ``text`` or ``faq``."""
    content_hash: str
    sections: tuple[Section, ...]
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Metadata of every chunk of the document (see the module docstring for the keys)."""


# -- metadata ----------------------------------------------------------------------------


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, str | int | float):
        return str(value).strip()
    raise ValueError("must be a single value or a list of values")


def _audience(value: object) -> str:
    text = _scalar(value).lower()
    if text not in AUDIENCES:
        raise ValueError(f"must be 'public' or 'internal', not {_scalar(value)!r}")
    return text


def _updated(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    text = _scalar(value)
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(text).isoformat()
        except ValueError:
            continue
    raise ValueError(f"must be an ISO date such as 2025-03-01, not {text!r}")


def _tags(value: object) -> str:
    items = value if isinstance(value, list | tuple) else [value]
    tags: list[str] = []
    for item in items:
        for tag in re.split(r"[;,]", _scalar(item)):
            if tag.strip() and tag.strip() not in tags:
                tags.append(tag.strip())
    return ",".join(tags)


def _value(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(part for part in map(_scalar, value) if part)
    return _scalar(value)


_NORMALISE = {"audience": _audience, "updated": _updated, "tags": _tags}


def _metadata(items: Iterable[tuple[str, object, int | None]], source: str) -> dict[str, str]:
    """Normalise ``(key, value, line)`` triples; an empty value counts as absent."""
    meta: dict[str, str] = {}
    for key, value, line in items:
        if key in _RESERVED:
            raise IngestError(
                f"'{key}' is set by cxbot and cannot be metadata", source=source, line=line
            )
        if value is None or value == "":
            continue
        try:
            text = _NORMALISE.get(key, _value)(value)
        except ValueError as exc:
            raise IngestError(f"{key}: {exc}", source=source, line=line) from None
        if text:
            meta[key] = text
    return meta


# -- Markdown ----------------------------------------------------------------------------


_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)
_FENCE_OPEN = re.compile(r"---[ \t]*\r?")
_FENCE_CLOSE = re.compile(r"(?:---|\.\.\.)[ \t]*\r?")


def _front_matter(text: str, source: str) -> tuple[dict[str, str], str, str]:
    """Split YAML front matter off a Markdown text: ``(metadata, title or "", body)``."""
    lines = text.split("\n")
    if not _FENCE_OPEN.fullmatch(lines[0]):
        return {}, "", text
    end = next((i for i in range(1, len(lines)) if _FENCE_CLOSE.fullmatch(lines[i])), None)
    if end is None:
        raise IngestError(
            "front matter opened with '---' is never closed (add a '---' line after it)",
            source=source,
            line=1,
        )
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    first = 2  # file line of the first YAML line
    yaml_text = "\n".join(lines[1:end])
    try:
        data = YAML(typ="rt").load(yaml_text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise IngestError(
            f"front matter is not valid YAML: {exc.problem or exc.context}",
            source=source,
            line=mark.line + first if mark is not None else first,
        ) from None
    except ReaderError as exc:  # a character YAML does not allow (a control character)
        raise IngestError(
            f"front matter cannot contain the character U+{int(exc.character):04X}",
            source=source,
            line=yaml_text.count("\n", 0, max(exc.position, 0)) + first,
        ) from None
    except YAMLError as exc:  # any other problem ruamel.yaml reports
        raise IngestError(f"front matter is not valid YAML: {exc}", source=source) from None
    body = "\n".join(lines[end + 1 :])
    if data is None:
        return {}, "", body
    if not isinstance(data, dict):
        raise IngestError(
            "front matter must be a mapping of keys to values", source=source, line=first
        )
    position = cast(Any, data).lc  # ruamel's line and column of each key
    lines_of = {key: position.key(key)[0] + first for key in data}
    title = ""
    if data.get("title") is not None:
        try:
            title = _scalar(data["title"])
        except ValueError as exc:
            raise IngestError(f"title: {exc}", source=source, line=lines_of["title"]) from None
    items = [(str(k), v, lines_of[k]) for k, v in data.items() if k != "title"]
    return _metadata(items, source), title, body


def _markdown_sections(text: str) -> list[Section]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=True
    )
    sections = []
    for part in splitter.split_text(text):
        meta: dict[str, str] = dict(part.metadata)
        heading = meta.get("h3") or meta.get("h2") or meta.get("h1", "")
        # the splitter strips every line and joins paragraphs with "  \n": put the blank
        # lines back, so the chunker sees paragraphs, lists and tables
        content = part.page_content.replace("  \n", "\n\n").strip()
        if content:
            sections.append(Section(content, str(heading)))
    return sections


def _read_markdown(text: str, source: str) -> tuple[str, list[Section], dict[str, str]]:
    meta, title, body = _front_matter(text, source)
    if not title:
        match = _H1.search(body)
        title = match.group(1) if match else ""
    return title, _markdown_sections(body), meta


# -- HTML --------------------------------------------------------------------------------


class _HeadMeta(HTMLParser):
    """Collects ``<meta name=… content=…>`` of the known keys and the canonical link."""

    NAMES = ("audience", "product", "updated", "tags")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, tuple[str, int]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        line = self.getpos()[0]
        if tag == "meta":
            name = values.get("name", "").strip().lower()
            if name in self.NAMES:
                self.found.setdefault(name, (values.get("content", ""), line))
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.found.setdefault("url", (values.get("href", "").strip(), line))


def _read_html(raw: bytes, source: str) -> tuple[str, list[Section], dict[str, str]]:
    import trafilatura

    html = raw.decode("utf-8", errors="replace")
    head = _HeadMeta()
    head.feed(html)
    head.close()
    meta = _metadata(((k, v, line) for k, (v, line) in head.found.items()), source)
    text = trafilatura.extract(
        html,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        favor_precision=True,
    )
    if not text:
        raise IngestError("no main text found in the HTML page", source=source)
    found = trafilatura.extract_metadata(html)
    title = (found.title if found is not None and found.title else "") or ""
    title = re.split(r"\s+[|\u2013-]\s+", title)[0].strip()
    return title, _markdown_sections(text), meta


# -- PDF ---------------------------------------------------------------------------------


def _read_pdf(raw: bytes, source: str) -> tuple[str, list[Section]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.get("/Title") or "") if reader.metadata else ""
    except (PdfReadError, OSError, ValueError) as exc:
        raise IngestError(f"unreadable PDF: {exc}", source=source) from exc
    sections = [
        Section(re.sub(r"[ \t]+", " ", text).strip(), "", number)
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if not title and sections:
        title = sections[0].text.splitlines()[0].strip()
    return title, sections


# -- FAQ ---------------------------------------------------------------------------------


def _required_text(fields: Mapping[str, object], name: str, source: str, line: int) -> str:
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise IngestError(f"FAQ entry has no {name}", source=source, line=line)
    if not isinstance(value, str):
        raise IngestError(f"FAQ entry's {name} must be text", source=source, line=line)
    return value.strip()


def _faq_sections(
    entries: Iterable[tuple[int, Mapping[str, object]]], source: str
) -> list[Section]:
    """One section per ``(line, fields)`` entry; ids must not repeat."""
    sections: list[Section] = []
    seen: dict[str, int] = {}
    for line, fields in entries:
        question = _required_text(fields, "question", source, line)
        answer = _required_text(fields, "answer", source, line)
        given = fields.get("id")
        if isinstance(given, bool) or not isinstance(given, str | int | None):
            raise IngestError("FAQ entry's id must be text or a number", source=source, line=line)
        key = str(given).strip() if given is not None else ""
        if key in seen:
            raise IngestError(
                f"id {key!r} is already used on line {seen[key]}", source=source, line=line
            )
        if not key:
            key = "q-" + hashlib.sha1(question.encode()).hexdigest()[:12]
            if key in seen:
                raise IngestError(
                    f"the same question is on line {seen[key]} (give the entries distinct ids)",
                    source=source,
                    line=line,
                )
        seen[key] = line
        meta = _metadata(
            ((k, v, line) for k, v in fields.items() if k not in ("question", "answer", "id")),
            source,
        )
        sections.append(Section(f"{question}\n{answer}", question, meta=meta, key=key))
    return sections


def _read_jsonl(text: str, source: str) -> list[Section]:
    entries: list[tuple[int, Mapping[str, object]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(
                f"not valid JSON: {exc.msg} (column {exc.colno})", source=source, line=number
            ) from None
        if not isinstance(record, dict):
            raise IngestError(
                "each line must be a JSON object with 'question' and 'answer'",
                source=source,
                line=number,
            )
        entries.append((number, record))
    return _faq_sections(entries, source)


def _read_csv(text: str, source: str) -> list[Section]:
    import csv

    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    entries: list[tuple[int, Mapping[str, object]]] = []
    end = 0  # last physical line read
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                missing = [name for name in ("question", "answer") if name not in header]
                if missing:
                    raise IngestError(
                        f"the header row has no {' or '.join(missing)} column",
                        source=source,
                        line=start,
                    )
                repeated = sorted({n for n in header if n and header.count(n) > 1})
                if repeated:
                    raise IngestError(
                        f"the header row repeats the column {repeated[0]!r}",
                        source=source,
                        line=start,
                    )
                continue
            named = dict(zip(header, row, strict=False))
            unnamed = [cell for name, cell in zip(header, row, strict=False) if not name]
            if any(cell.strip() for cell in [*unnamed, *row[len(header) :]]):
                raise IngestError(
                    "the row has a value in a column without a name in the header row",
                    source=source,
                    line=start,
                )
            named.pop("", None)
            entries.append((start, named))
    except csv.Error as exc:
        raise IngestError(f"not valid CSV: {exc}", source=source, line=reader.line_num) from None
    return _faq_sections(entries, source)


# -- any file ----------------------------------------------------------------------------


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError("not UTF-8 text", source=source) from None


def read_document(path: Path, root: Path, raw: bytes | None = None) -> Document:
    """Read one file of the knowledge folder (``raw``: its bytes, if already read)."""
    source = path.relative_to(root).as_posix()
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read: {exc}", source=source) from exc
    suffix = path.suffix.lower()
    content_hash = hashlib.sha256(raw).hexdigest()
    fallback_title = path.stem.replace("-", " ").replace("_", " ").capitalize()
    meta: dict[str, str] = {}
    if suffix in (".md", ".markdown"):
        title, sections, meta = _read_markdown(_decode(raw, source), source)
        kind = "markdown"
    elif suffix == ".txt":
        title, sections, kind = "", [Section(_decode(raw, source).strip())], "text"
    elif suffix in (".html", ".htm"):
        title, sections, meta = _read_html(raw, source)
        kind = "html"
    elif suffix == ".pdf":
        title, sections = _read_pdf(raw, source)
        kind = "pdf"
    elif suffix == ".jsonl":
        title, sections, kind = "", _read_jsonl(_decode(raw, source), source), "faq"
    elif suffix == ".csv":
        title, sections, kind = "", _read_csv(_decode(raw, source), source), "faq"
    else:
        raise IngestError(f"unsupported file type {suffix}", source=source)
    sections = [s for s in sections if s.text]
    if not sections:
        raise IngestError("document has no text", source=source)
    return Document(source, title or fallback_title, kind, content_hash, tuple(sections), meta)
