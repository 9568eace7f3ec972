"""Readers of knowledge documents: Markdown, HTML (main text only), PDF (per page), text.

Each reader returns a :class:`Document` of sections with heading and page metadata; the
chunker splits sections further. HTML boilerplate (navigation, cookie banners, footers)
is removed with trafilatura; PDF text comes from pypdf page by page.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from cxbot.errors import IngestError

__all__ = ["SUFFIXES", "Document", "Section", "read_document"]

SUFFIXES = (".md", ".markdown", ".html", ".htm", ".pdf", ".txt")


@dataclass(frozen=True, slots=True)
class Section:
    text: str
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    """Path relative to the knowledge folder, with forward slashes."""
    title: str
    kind: str
    content_hash: str
    sections: tuple[Section, ...]


_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


def _markdown_sections(text: str) -> list[Section]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=True
    )
    sections = []
    for part in splitter.split_text(text):
        meta: dict[str, str] = dict(part.metadata)
        heading = meta.get("h3") or meta.get("h2") or meta.get("h1", "")
        if part.page_content.strip():
            sections.append(Section(part.page_content.strip(), str(heading)))
    return sections


def _read_html(raw: bytes, source: str) -> tuple[str, list[Section]]:
    import trafilatura

    html = raw.decode("utf-8", errors="replace")
    text = trafilatura.extract(
        html,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        favor_precision=True,
    )
    if not text:
        raise IngestError("no main text found in the HTML page", source=source)
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta is not None and meta.title else "") or ""
    title = re.split(r"\s+[|\u2013-]\s+", title)[0].strip()
    return title, _markdown_sections(text)


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
    if suffix in (".md", ".markdown", ".txt"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IngestError("not UTF-8 text", source=source) from None
        match = _H1.search(text) if suffix != ".txt" else None
        title = match.group(1) if match else fallback_title
        sections = _markdown_sections(text) if suffix != ".txt" else [Section(text.strip())]
        kind = "markdown" if suffix != ".txt" else "text"
    elif suffix in (".html", ".htm"):
        title, sections = _read_html(raw, source)
        kind = "html"
    elif suffix == ".pdf":
        title, sections = _read_pdf(raw, source)
        kind = "pdf"
    else:
        raise IngestError(f"unsupported file type {suffix}", source=source)
    sections = [s for s in sections if s.text]
    if not sections:
        raise IngestError("document has no text", source=source)
    return Document(source, title or fallback_title, kind, content_hash, tuple(sections))
