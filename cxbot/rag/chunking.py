"""Chunking: sections → overlapping chunks with stable ids and metadata.

Uses langchain-text-splitters' recursive splitter within each section, so a chunk never
spans two headings; the heading is kept as the chunk's ``section`` and prefixed to the
embedded text for context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cxbot.rag.documents import Document

__all__ = ["Chunk", "chunk_document"]


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    text: str
    source: str
    title: str
    section: str
    page: int | None

    @property
    def embed_text(self) -> str:
        """What is embedded: the title and heading give a short chunk its context."""
        if self.section and self.section != self.title:
            return f"{self.title} — {self.section}\n{self.text}"
        return f"{self.title}\n{self.text}"

    def metadata(self) -> dict[str, str | int]:
        meta: dict[str, str | int] = {
            "source": self.source,
            "title": self.title,
            "section": self.section,
        }
        if self.page is not None:
            meta["page"] = self.page
        return meta


def chunk_document(document: Document, *, size: int, overlap: int) -> list[Chunk]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size, chunk_overlap=min(overlap, size // 2)
    )
    chunks: list[Chunk] = []
    for section in document.sections:
        for piece in splitter.split_text(section.text):
            digest = hashlib.sha1(
                f"{document.source}\x00{section.heading}\x00{piece}".encode()
            ).hexdigest()[:12]
            chunks.append(
                Chunk(
                    id=f"{document.source}#{len(chunks)}-{digest}",
                    text=piece,
                    source=document.source,
                    title=document.title,
                    section=section.heading,
                    page=section.page,
                )
            )
    return chunks
