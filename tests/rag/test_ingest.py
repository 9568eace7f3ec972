"""Incremental, crash-safe ingest of the knowledge folder (real MiniLM, Chroma, SQLite)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import chromadb
import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import BackendError
from cxbot.rag.chunking import chunk_document
from cxbot.rag.documents import SUFFIXES, read_document
from cxbot.rag.store import ChromaStore

MakeBot = Callable[..., Assistant]
KNOWLEDGE = Path("knowledge/northwind")
CHUNK_SIZE, CHUNK_OVERLAP = 900, 120  # cxbot.yaml of the sample project

PIN = "cards/change-your-pin.md"
PIN_ADDITION = (
    "\n## Changing your PIN at a Zephyr kiosk\n\n"
    "You can also change your PIN at the Zephyr kiosk in Kingsbridge railway station. "
    "It takes about two minutes and you need your card and your current PIN.\n"
)
VIRTUAL_CARDS = """# Virtual Cards

A virtual card is a card number that lives only in the Northwind app. Create one under
**Cards > Add a virtual card** to shop online without sharing your physical card number.
Each customer can hold up to three virtual cards, and you can delete one at any time.
"""


# -- helpers -----------------------------------------------------------------------------


def _knowledge(project: Path) -> Path:
    return project / KNOWLEDGE


def _files(project: Path) -> list[str]:
    root = _knowledge(project)
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _expected_ids(project: Path, source: str) -> list[str]:
    root = _knowledge(project)
    doc = read_document(root / source, root)
    return [c.id for c in chunk_document(doc, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP)]


def _stored_ids(project: Path) -> dict[str, list[str]]:
    """Chunk ids per source as they are in the project's Chroma collections (public and
    internal)."""
    client = chromadb.PersistentClient(
        path=str(project / ".cxbot" / "chroma"),
        settings=chromadb.Settings(anonymized_telemetry=False),
    )
    by_source: dict[str, list[str]] = {}
    for name in ("knowledge", "knowledge_internal"):
        got = client.get_collection(name).get(include=["metadatas"])
        for chunk_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            by_source.setdefault(str(meta["source"]), []).append(chunk_id)
    return by_source


def _manifest(project: Path) -> dict[str, tuple[str, int]]:
    path = project / ".cxbot" / "ingest.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {s: (h, n) for s, h, n in conn.execute("SELECT source, hash, chunks FROM documents")}
    finally:
        conn.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _top_sources(bot: Assistant, embedder: SentenceTransformerEmbedder, question: str) -> list[str]:
    hits = bot.pipeline.retriever.run(embedder.embed_query(question))
    return [str(h.metadata["source"]) for h in hits]


def _assert_store_matches_knowledge(project: Path) -> None:
    """Every document present exactly once, in its current version, and the manifest agrees."""
    root = _knowledge(project)
    files = _files(project)
    stored = _stored_ids(project)
    assert sorted(stored) == files
    for source in files:
        expected = _expected_ids(project, source)
        assert sorted(stored[source]) == sorted(expected), source
    manifest = _manifest(project)
    assert manifest == {s: (_sha256(root / s), len(_expected_ids(project, s))) for s in files}


# -- tests -------------------------------------------------------------------------------


def test_rerun_on_unchanged_knowledge_embeds_nothing(
    make_bot: MakeBot, embedder: SentenceTransformerEmbedder, project: Path
) -> None:
    bot = make_bot()
    files = _files(project)
    total = bot.vector_store.count()
    embedded_before = embedder.documents_embedded

    report = bot.ingest()

    assert report.chunks_embedded == 0
    assert embedder.documents_embedded == embedded_before
    assert report.unchanged == len(files) > 30
    assert report.added == report.updated == report.removed == ()
    assert report.errors == ()
    assert not report.changed
    assert report.chunks_total == total == sum(len(ids) for ids in _stored_ids(project).values())


def test_editing_one_article_reembeds_only_that_article(
    make_bot: MakeBot, embedder: SentenceTransformerEmbedder, project: Path
) -> None:
    bot = make_bot()
    question = "Can I change my PIN at the Zephyr kiosk at the railway station?"
    assert not any(
        "Zephyr" in h.text for h in bot.pipeline.retriever.run(embedder.embed_query(question))
    )
    old_ids = set(_stored_ids(project)[PIN])
    with (_knowledge(project) / PIN).open("a", encoding="utf-8") as fh:
        fh.write(PIN_ADDITION)
    expected = _expected_ids(project, PIN)
    embedded_before = embedder.documents_embedded

    report = bot.ingest()

    assert report.updated == (PIN,)
    assert report.added == report.removed == ()
    assert report.errors == ()
    assert report.unchanged == len(_files(project)) - 1
    assert report.chunks_embedded == len(expected)
    assert embedder.documents_embedded - embedded_before == len(expected)
    # the old version's chunks are gone, the new ones are there
    stored = set(_stored_ids(project)[PIN])
    assert stored == set(expected)
    assert stored != old_ids
    hits = bot.pipeline.retriever.run(embedder.embed_query(question))
    assert hits[0].metadata["source"] == PIN
    assert "Zephyr kiosk in Kingsbridge railway station" in hits[0].text
    assert hits[0].metadata["section"] == "Changing your PIN at a Zephyr kiosk"
    # and a second run has nothing left to do
    again = bot.ingest()
    assert again.chunks_embedded == 0 and not again.changed


def test_deleting_an_article_removes_its_chunks(
    make_bot: MakeBot, embedder: SentenceTransformerEmbedder, project: Path
) -> None:
    bot = make_bot()
    assert PIN in _top_sources(bot, embedder, "How do I change my PIN?")
    pin_chunks = len(_stored_ids(project)[PIN])
    total = bot.vector_store.count()
    (_knowledge(project) / PIN).unlink()

    report = bot.ingest()

    assert report.removed == (PIN,)
    assert report.added == report.updated == ()
    assert report.chunks_embedded == 0
    assert report.unchanged == len(_files(project))
    assert PIN not in bot.vector_store.sources()
    assert bot.vector_store.count() == report.chunks_total == total - pin_chunks
    assert PIN not in _top_sources(bot, embedder, "How do I change my PIN?")
    assert PIN not in _manifest(project)
    assert bot.ingest().removed == ()  # forgotten, not removed twice


def test_adding_a_file_ingests_only_it(
    make_bot: MakeBot, embedder: SentenceTransformerEmbedder, project: Path
) -> None:
    bot = make_bot()
    source = "cards/virtual-cards.md"
    (_knowledge(project) / source).write_text(VIRTUAL_CARDS, encoding="utf-8")
    # files of other types are not knowledge and are ignored, not reported
    (_knowledge(project) / "cards" / "notes.docx").write_bytes(b"PK\x03\x04junk")
    (_knowledge(project) / "cards" / ".draft.md").write_text("# Draft\n\nSecret draft.\n")
    before = embedder.documents_embedded

    report = bot.ingest()

    assert report.added == (source,)
    assert report.updated == report.removed == report.errors == ()
    assert report.unchanged == len(_files(project)) - 1
    assert report.chunks_embedded == len(_expected_ids(project, source))
    assert embedder.documents_embedded - before == report.chunks_embedded
    assert source in bot.vector_store.sources()
    assert not any(s.endswith((".docx", ".draft.md")) for s in bot.vector_store.sources())
    hits = bot.pipeline.retriever.run(embedder.embed_query("How many virtual cards can I have?"))
    assert hits[0].metadata["source"] == source
    assert hits[0].metadata["title"] == "Virtual Cards"


def test_corrupt_file_is_reported_and_the_rest_is_ingested(
    make_bot: MakeBot, embedder: SentenceTransformerEmbedder, project: Path
) -> None:
    bot = make_bot()
    root = _knowledge(project)
    (root / "cards" / "corrupt.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfd")
    pdf = (root / "fees" / "tariff-of-charges.pdf").read_bytes()
    (root / "fees" / "broken.pdf").write_bytes(pdf[: len(pdf) // 3])
    (root / "cards" / "virtual-cards.md").write_text(VIRTUAL_CARDS, encoding="utf-8")
    with (root / PIN).open("a", encoding="utf-8") as fh:
        fh.write(PIN_ADDITION)

    report = bot.ingest()

    assert sorted(e.source for e in report.errors) == ["cards/corrupt.md", "fees/broken.pdf"]
    assert report.added == ("cards/virtual-cards.md",)
    assert report.updated == (PIN,)
    assert report.removed == ()
    sources = bot.vector_store.sources()
    assert "cards/corrupt.md" not in sources and "fees/broken.pdf" not in sources
    assert "cards/virtual-cards.md" in sources
    assert set(_stored_ids(project)[PIN]) == set(_expected_ids(project, PIN))
    manifest = _manifest(project)
    assert "cards/corrupt.md" not in manifest and "fees/broken.pdf" not in manifest

    # the broken files are reported again (not silently skipped), nothing is re-embedded
    before = embedder.documents_embedded
    again = bot.ingest()
    assert sorted(e.source for e in again.errors) == ["cards/corrupt.md", "fees/broken.pdf"]
    assert again.chunks_embedded == 0 and not again.changed
    assert embedder.documents_embedded == before


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_unreadable_file_is_reported_and_the_rest_is_ingested(
    make_bot: MakeBot, project: Path
) -> None:
    bot = make_bot()
    root = _knowledge(project)
    # a symlink to /proc/self/mem: is_file() is true, reading it fails with EIO (even as root)
    (root / "cards" / "unreadable.md").symlink_to("/proc/self/mem")
    (root / "cards" / "virtual-cards.md").write_text(VIRTUAL_CARDS, encoding="utf-8")

    report = bot.ingest()

    assert [e.source for e in report.errors] == ["cards/unreadable.md"]
    assert report.added == ("cards/virtual-cards.md",)


class FailingStore(ChromaStore):
    """A real Chroma store whose ``fail_on``-th upsert raises, like a disk filling up."""

    def __init__(self, path: Path, *, fail_on: int) -> None:
        super().__init__(path)
        self.fail_on = fail_on
        self.upserts = 0

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        self.upserts += 1
        if self.upserts == self.fail_on:
            raise RuntimeError("database or disk is full")
        super().upsert(ids, vectors, texts, metadatas)


def test_interrupted_ingest_is_finished_by_the_next_run(
    make_bot: MakeBot,
    embedder: SentenceTransformerEmbedder,
    project: Path,
    ingested_project: Path,
    tmp_path: Path,
) -> None:
    root = _knowledge(project)
    statements = "accounts/statements.md"  # written first (files go in sorted order)
    new = "savings/virtual-cards.md"  # written third: never reached by the failing run
    gone = "help/bereavement-support.md"
    with (root / statements).open("a", encoding="utf-8") as fh:
        fh.write("\n## Paper statements\n\nPaper statements are posted on the 3rd of each month.\n")
    # the second write: a much shorter version, so stale chunks would show
    (root / PIN).write_text(
        "# Changing Your PIN\n\nChange your PIN at any Northwind cash machine.\n", encoding="utf-8"
    )
    (root / new).write_text(VIRTUAL_CARDS, encoding="utf-8")
    (root / gone).unlink()

    store = FailingStore(project / ".cxbot" / "chroma", fail_on=2)
    with pytest.raises(BackendError, match=PIN):
        make_bot(vector_store=store).ingest()
    assert store.upserts == 2
    stored = _stored_ids(project)
    assert set(stored[statements]) == set(_expected_ids(project, statements))
    assert PIN not in stored  # deleted, then the write failed
    assert new not in stored and gone not in stored

    report = make_bot().ingest()

    assert report.updated == (PIN,)
    assert report.added == (new,)
    assert report.removed == ()  # already done by the interrupted run
    assert report.errors == ()
    assert report.chunks_embedded == len(_expected_ids(project, PIN)) + len(
        _expected_ids(project, new)
    )
    _assert_store_matches_knowledge(project)

    # chunk counts per source equal fresh ingests: the session's for untouched documents,
    # and one in another folder for the three touched here
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh, ignore=shutil.ignore_patterns(".cxbot"))
    for path in _knowledge(fresh).rglob("*"):
        rel = path.relative_to(_knowledge(fresh)).as_posix()
        if path.is_file() and path.suffix != ".json" and rel not in (statements, PIN, new):
            path.unlink()
    fresh_bot = Assistant.from_dir(fresh, embedder=embedder, env={})
    try:
        fresh_report = fresh_bot.ingest()
    finally:
        fresh_bot.close()
    assert sorted(fresh_report.added) == sorted((statements, PIN, new))
    expected_counts = {s: n for s, (_, n) in _manifest(ingested_project).items() if s != gone}
    expected_counts.update({s: n for s, (_, n) in _manifest(fresh).items()})
    assert {s: n for s, (_, n) in _manifest(project).items()} == expected_counts
    assert {s: len(ids) for s, ids in _stored_ids(project).items()} == expected_counts


def test_an_emptied_vector_store_is_filled_again(make_bot: MakeBot, project: Path) -> None:
    shutil.rmtree(project / ".cxbot" / "chroma")  # e.g. a new Chroma server, or a reset one
    bot = make_bot()
    assert bot.vector_store.count() == 0
    report = bot.ingest()
    assert report.chunks_embedded == report.chunks_total == bot.vector_store.count() > 0
    assert bot.ingest().chunks_embedded == 0
    _assert_store_matches_knowledge(project)
