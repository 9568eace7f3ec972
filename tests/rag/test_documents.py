"""Reading knowledge documents (Markdown, HTML, PDF, text) and chunking them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cxbot.errors import IngestError
from cxbot.rag.chunking import chunk_document
from cxbot.rag.documents import SUFFIXES, Document, read_document

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge" / "northwind"
ALL_SOURCES = sorted(
    p.relative_to(KNOWLEDGE).as_posix()
    for p in KNOWLEDGE.rglob("*")
    if p.is_file() and p.suffix.lower() in SUFFIXES
)


def _read(source: str) -> Document:
    return read_document(KNOWLEDGE / source, KNOWLEDGE)


def _text(document: Document) -> str:
    return "\n".join(section.text for section in document.sections)


# -- Markdown ----------------------------------------------------------------------------


def test_markdown_title_comes_from_the_h1_and_sections_from_headings() -> None:
    doc = _read("cards/lost-or-stolen-card.md")

    assert doc.source == "cards/lost-or-stolen-card.md"
    assert doc.kind == "markdown"
    assert doc.title == "Lost or Stolen Card"
    headings = [s.heading for s in doc.sections]
    assert headings == [
        "Lost or Stolen Card",
        "Report it in the app (fastest)",
        "Report it by phone or in branch",
        "What happens next",
        "If there are payments you don't recognise",
        "If you're abroad",
    ]
    by_heading = {s.heading: s.text for s in doc.sections}
    assert "0300 555 0199" in by_heading["Report it by phone or in branch"]
    assert "overseas address" in by_heading["If you're abroad"]
    # headings are metadata, not repeated in the section text; Markdown has no pages
    assert all(not s.text.startswith("#") for s in doc.sections)
    assert {s.page for s in doc.sections} == {None}


def test_markdown_without_h1_falls_back_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "opening-hours_faq.md"
    path.write_text("## Weekdays\n\nWe open at nine.\n", encoding="utf-8")

    doc = read_document(path, tmp_path)

    assert doc.title == "Opening hours faq"
    assert [(s.heading, s.text) for s in doc.sections] == [("Weekdays", "We open at nine.")]


def test_content_hash_changes_with_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# A\n\nOne.\n", encoding="utf-8")
    first = read_document(path, tmp_path).content_hash
    assert read_document(path, tmp_path).content_hash == first
    path.write_text("# A\n\nTwo.\n", encoding="utf-8")
    assert read_document(path, tmp_path).content_hash != first


# -- HTML --------------------------------------------------------------------------------


def test_html_keeps_the_article_and_drops_the_page_furniture() -> None:
    doc = _read("branches/accessibility.html")

    assert doc.kind == "html"
    assert doc.title == "Accessibility at Our Branches"  # "| Northwind Bank" cut off
    text = _text(doc)
    # main text is kept
    for kept in (
        "step-free access",
        "a colleague will set up our portable ramp",
        "BSL video interpreter",
        "dial 18001 followed by 0300 555 0100",
        "quiet hour every Wednesday",
        "Assistance dogs are welcome",
    ):
        assert kept in text, kept
    # cookie banner, navigation, breadcrumbs, aside and footer are not
    for dropped in (
        "We use cookies",
        "Accept all cookies",
        "Reject non-essential cookies",
        "Skip to main content",
        "Log in",
        "Related help",
        "Privacy notice",
        "Sitemap",
        "fictional bank created for demonstration purposes",
        "Calls may be recorded",
        "Registered number",
    ):
        assert dropped not in text, dropped
    headings = [s.heading for s in doc.sections]
    for heading in (
        "Getting into each branch",
        "Hearing, sight and speech support",
        "Quieter times and extra time",
        "Assistance dogs and companions",
    ):
        assert heading in headings
    ramp = next(s for s in doc.sections if "portable ramp" in s.text)
    assert ramp.heading == "Getting into each branch"


def test_html_page_without_main_text_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(
        "<html><head><title>Nothing | Northwind Bank</title></head>"
        "<body><script>var x = 1;</script><p>   </p></body></html>",
        encoding="utf-8",
    )
    with pytest.raises(IngestError) as info:
        read_document(path, tmp_path)
    assert info.value.source == "empty.html"


# -- PDF ---------------------------------------------------------------------------------


def test_pdf_sections_are_pages_with_numbers_and_the_title_from_metadata() -> None:
    doc = _read("fees/tariff-of-charges.pdf")

    assert doc.kind == "pdf"
    assert doc.title == "Northwind Bank Tariff of Charges"
    assert [s.page for s in doc.sections] == [1, 2]
    page1, page2 = (s.text for s in doc.sections)
    assert "Everyday Current Account" in page1
    assert "Page 1 of 2" in page1
    assert "International payments" in page2
    assert "Bank reference letter £10" in page2
    assert "Page 2 of 2" in page2
    assert "Bank reference letter" not in page1


def test_pdf_chunks_carry_their_page_number() -> None:
    chunks = chunk_document(_read("fees/tariff-of-charges.pdf"), size=900, overlap=120)

    assert {c.page for c in chunks} == {1, 2}
    for chunk in chunks:
        meta = chunk.metadata()
        assert meta["page"] == chunk.page
        assert meta["title"] == "Northwind Bank Tariff of Charges"
    letter = [c for c in chunks if "Bank reference letter" in c.text]
    assert letter and all(c.page == 2 for c in letter)


def test_corrupt_pdf_is_an_ingest_error(tmp_path: Path) -> None:
    raw = (KNOWLEDGE / "fees/tariff-of-charges.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(raw[: len(raw) // 2])

    with pytest.raises(IngestError) as info:
        read_document(path, tmp_path)
    assert info.value.source == "truncated.pdf"


# -- plain text --------------------------------------------------------------------------


def test_text_file_is_one_untitled_section(tmp_path: Path) -> None:
    folder = tmp_path / "help"
    folder.mkdir()
    path = folder / "phone-banking_hours.txt"
    path.write_text(
        "\n# Not a heading in a text file\nPhone banking is open 8am to 8pm, every day.\n\n",
        encoding="utf-8",
    )

    doc = read_document(path, tmp_path)

    assert doc.source == "help/phone-banking_hours.txt"
    assert doc.kind == "text"
    assert doc.title == "Phone banking hours"
    assert len(doc.sections) == 1
    section = doc.sections[0]
    assert section.heading == ""
    assert section.page is None
    assert section.text == (
        "# Not a heading in a text file\nPhone banking is open 8am to 8pm, every day."
    )


# -- errors ------------------------------------------------------------------------------


def test_binary_junk_with_md_suffix_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "cards" / "logo.md"
    path.parent.mkdir()
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd\x00")

    with pytest.raises(IngestError) as info:
        read_document(path, tmp_path)
    assert info.value.source == "cards/logo.md"
    assert "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.md", b""),
        ("title-only.md", b"# Only a title\n"),
        ("blank.txt", b"  \n\t\n"),
        ("empty.html", b""),
    ],
)
def test_document_without_text_is_an_ingest_error(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(IngestError) as info:
        read_document(path, tmp_path)
    assert info.value.source == name


@pytest.mark.parametrize("name", ["notes.docx", "table.csv", "README"])
def test_unsupported_suffix_is_an_ingest_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("Some perfectly readable text.", encoding="utf-8")

    with pytest.raises(IngestError, match="unsupported file type") as info:
        read_document(path, tmp_path)
    assert info.value.source == name


# -- chunking ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return [_read(source) for source in ALL_SOURCES]


def test_every_sample_document_is_readable(documents: list[Document]) -> None:
    assert len(documents) == len(ALL_SOURCES) >= 30
    assert {d.kind for d in documents} == {"markdown", "html", "pdf"}
    assert all(d.title and d.sections for d in documents)


@pytest.mark.parametrize(("size", "overlap"), [(900, 120), (200, 40)])
def test_chunks_respect_the_size_and_carry_metadata(
    documents: list[Document], size: int, overlap: int
) -> None:
    for doc in documents:
        chunks = chunk_document(doc, size=size, overlap=overlap)
        assert chunks, doc.source
        headings = {s.heading for s in doc.sections}
        for chunk in chunks:
            assert 0 < len(chunk.text) <= size, (doc.source, len(chunk.text))
            assert chunk.source == doc.source
            assert chunk.title == doc.title
            assert chunk.section in headings
            meta = chunk.metadata()
            assert meta["source"] == doc.source
            assert meta["title"] == doc.title
            assert meta["section"] == chunk.section
            assert ("page" in meta) == (doc.kind == "pdf")
            assert chunk.embed_text.startswith(doc.title)
            assert chunk.embed_text.endswith(chunk.text)


def test_smaller_chunks_mean_more_chunks(documents: list[Document]) -> None:
    doc = next(d for d in documents if d.source == "cards/lost-or-stolen-card.md")
    assert len(chunk_document(doc, size=200, overlap=40)) > len(
        chunk_document(doc, size=900, overlap=120)
    )


def test_chunk_ids_are_unique_across_the_knowledge(documents: list[Document]) -> None:
    ids = [c.id for d in documents for c in chunk_document(d, size=900, overlap=120)]
    assert len(ids) == len(set(ids))
    assert all(i.split("#", 1)[0] in ALL_SOURCES for i in ids)


def test_chunk_ids_are_unique_for_repeated_text_under_one_heading(tmp_path: Path) -> None:
    path = tmp_path / "faq.md"
    path.write_text(
        "# FAQ\n\n## Question\n\nAsk us anything.\n\nAsk us anything.\n", encoding="utf-8"
    )
    chunks = chunk_document(read_document(path, tmp_path), size=20, overlap=0)

    assert [c.text for c in chunks] == ["Ask us anything.", "Ask us anything."]
    assert len({c.id for c in chunks}) == 2


_CHUNK_IDS_SCRIPT = """
import json, sys
from pathlib import Path
from cxbot.rag.chunking import chunk_document
from cxbot.rag.documents import read_document
root = Path(sys.argv[1])
print(json.dumps({s: [c.id for c in chunk_document(read_document(root / s, root), size=900,
                  overlap=120)] for s in sys.argv[2:]}))
"""


def test_chunk_ids_are_stable_across_runs() -> None:
    sources = [
        "cards/lost-or-stolen-card.md",
        "branches/accessibility.html",
        "fees/tariff-of-charges.pdf",
    ]
    here = {s: [c.id for c in chunk_document(_read(s), size=900, overlap=120)] for s in sources}
    again = {s: [c.id for c in chunk_document(_read(s), size=900, overlap=120)] for s in sources}
    # another interpreter with a different hash seed
    out = subprocess.run(
        [sys.executable, "-c", _CHUNK_IDS_SCRIPT, str(KNOWLEDGE), *sources],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    other_process = json.loads(out.stdout)

    assert here == again == other_process
    assert all(ids for ids in here.values())


def test_editing_one_section_keeps_the_ids_of_earlier_chunks(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    original = (KNOWLEDGE / "cards/lost-or-stolen-card.md").read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    before = [c.id for c in chunk_document(read_document(path, tmp_path), size=900, overlap=120)]
    path.write_text(
        original.replace("(24 hours). We can send", "(24 hours). We will send"), encoding="utf-8"
    )
    after = [c.id for c in chunk_document(read_document(path, tmp_path), size=900, overlap=120)]

    assert len(before) == len(after)
    assert before[:-1] == after[:-1]  # only the last section ("If you're abroad") changed
    assert before[-1] != after[-1]
