"""Reading knowledge documents (Markdown, HTML, PDF, text, FAQ files), their metadata, and
chunking them."""

from __future__ import annotations

import csv
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


# -- Markdown front matter ---------------------------------------------------------------

FRONT_MATTER = """---
title: Premier fee waivers (staff)
audience: internal
product: Premier Current Account
url: https://intranet.example/premier/waivers
updated: 2025-03-01
tags:
  - fees
  - premier
owner: Payments team
reviewed: true
---
# Premier fee waivers

Waive the monthly fee once a year when a customer asks.

## Who can approve

A team leader approves a second waiver in the same year.
"""


def test_front_matter_becomes_metadata_and_never_chunk_text(tmp_path: Path) -> None:
    path = tmp_path / "internal" / "premier-waivers.md"
    path.parent.mkdir()
    path.write_text(FRONT_MATTER, encoding="utf-8")

    doc = read_document(path, tmp_path)

    assert doc.title == "Premier fee waivers (staff)"  # the front matter's title wins
    assert doc.meta == {
        "audience": "internal",
        "product": "Premier Current Account",
        "url": "https://intranet.example/premier/waivers",
        "updated": "2025-03-01",
        "tags": "fees,premier",
        "owner": "Payments team",
        "reviewed": "true",
    }
    assert [s.heading for s in doc.sections] == ["Premier fee waivers", "Who can approve"]
    chunks = chunk_document(doc, size=900, overlap=120) + chunk_document(doc, size=40, overlap=10)
    for chunk in chunks:
        for leaked in ("---", "audience", "internal", "Payments team", "2025-03-01", "tags:"):
            assert leaked not in chunk.text, (leaked, chunk.text)
        assert chunk.audience == "internal"
        assert chunk.metadata()["audience"] == "internal"
        assert chunk.tags == ("fees", "premier")
    assert "Waive the monthly fee" in chunks[0].text


def test_front_matter_without_title_keeps_the_h1_and_defaults_to_public(tmp_path: Path) -> None:
    path = tmp_path / "savings.md"
    path.write_text(
        "---\nproduct: Easy Saver\nupdated: 2024-11-05T09:30:00\ntags: rates; savings\n---\n\n"
        "# Savings rates\n\nThe Easy Saver pays 3.1% AER.\n",
        encoding="utf-8",
    )

    doc = read_document(path, tmp_path)

    assert doc.title == "Savings rates"
    assert doc.meta == {
        "product": "Easy Saver",
        "updated": "2024-11-05T09:30:00",
        "tags": "rates,savings",
    }
    (chunk,) = chunk_document(doc, size=900, overlap=120)
    assert chunk.text == "The Easy Saver pays 3.1% AER."
    assert chunk.audience == "public"
    assert chunk.metadata()["audience"] == "public"


@pytest.mark.parametrize(
    ("front_matter", "line", "message"),
    [
        ("title: Fees\naudience: [public\nproduct: x\n", 4, "not valid YAML"),
        ("title: Fees\ntitle: Again\n", 3, "not valid YAML"),
        ("title: Fees\naudience: customers\n", 3, "'public' or 'internal'"),
        ("product: x\n\nupdated: last tuesday\n", 4, "ISO date"),
        ("product:\n  name: x\n", 2, "single value"),
        ("- a list\n- not a mapping\n", 2, "mapping"),
        ("source: elsewhere.md\n", 2, "set by cxbot"),
    ],
)
def test_bad_front_matter_is_an_ingest_error_naming_the_line(
    tmp_path: Path, front_matter: str, line: int, message: str
) -> None:
    path = tmp_path / "fees.md"
    path.write_text(f"---\n{front_matter}---\n# Fees\n\nNo fees.\n", encoding="utf-8")

    with pytest.raises(IngestError, match=message) as info:
        read_document(path, tmp_path)
    assert info.value.source == "fees.md"
    assert info.value.line == line
    assert str(info.value).startswith(f"fees.md:{line}: ")


def test_unclosed_front_matter_is_an_ingest_error_on_line_one(tmp_path: Path) -> None:
    path = tmp_path / "fees.md"
    path.write_text("---\naudience: internal\n# Fees\n\nNo fees.\n", encoding="utf-8")

    with pytest.raises(IngestError, match="never closed") as info:
        read_document(path, tmp_path)
    assert (info.value.source, info.value.line) == ("fees.md", 1)


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


def test_html_meta_tags_and_canonical_link_become_metadata(tmp_path: Path) -> None:
    path = tmp_path / "staff" / "overrides.html"
    path.parent.mkdir()
    path.write_text(
        """<!doctype html>
<html><head>
<title>Overdraft overrides | Northwind Bank</title>
<meta name="description" content="Not kept">
<meta name="audience" content="internal">
<meta name="product" content="Arranged overdraft">
<meta name="updated" content="2025-02-14">
<link rel="canonical" href="https://intranet.example/overdrafts/overrides">
</head><body><main><article>
<h1>Overdraft overrides</h1>
<p>A team leader can raise an arranged overdraft limit by up to 500 pounds for thirty days
when a customer is waiting for a salary payment that has been delayed by their employer.</p>
<p>Record the reason in the customer's notes and set a reminder to review it.</p>
</article></main></body></html>""",
        encoding="utf-8",
    )

    doc = read_document(path, tmp_path)

    assert doc.meta == {
        "audience": "internal",
        "product": "Arranged overdraft",
        "updated": "2025-02-14",
        "url": "https://intranet.example/overdrafts/overrides",
    }
    chunks = chunk_document(doc, size=900, overlap=120)
    assert chunks and all(c.audience == "internal" for c in chunks)
    meta = chunks[0].metadata()
    assert meta["url"] == "https://intranet.example/overdrafts/overrides"
    assert meta["product"] == "Arranged overdraft"
    assert "description" not in meta


def test_html_with_an_unknown_audience_is_an_ingest_error_naming_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        '<html><head>\n<title>Page</title>\n<meta name="audience" content="staff">\n</head>'
        "<body><article><p>Some text that is long enough to be the main text of a page, "
        "about opening hours and branches.</p></article></body></html>",
        encoding="utf-8",
    )

    with pytest.raises(IngestError, match="'public' or 'internal'") as info:
        read_document(path, tmp_path)
    assert (info.value.source, info.value.line) == ("page.html", 3)


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


# -- FAQ files ---------------------------------------------------------------------------

FAQ_ENTRIES = [
    {
        "id": "sunday",
        "question": "Are branches open on Sundays?",
        "answer": "No. Branches open Monday to Saturday.",
        "product": "Branches",
    },
    {
        "id": "pin",
        "question": "Can I change my PIN in the app?",
        "answer": "Yes, under Cards > Change PIN.",
        "tags": ["cards", "pin"],
        "updated": "2025-01-10",
    },
    {
        "id": "override",
        "question": "Who can waive an overdraft fee?",
        "answer": "A team leader, once a year per customer.",
        "audience": "internal",
        "url": "https://intranet.example/waivers",
        "team": "Lending",
    },
]


def _jsonl(entries: list[dict[str, object]]) -> str:
    return "\n".join(json.dumps(entry) for entry in entries) + "\n"


def test_faq_jsonl_entries_are_sections_with_their_own_metadata(tmp_path: Path) -> None:
    path = tmp_path / "faq" / "branch-questions.jsonl"
    path.parent.mkdir()
    # blank lines anywhere are skipped
    path.write_text("\n" + _jsonl(FAQ_ENTRIES).replace("\n", "\n\n", 1), encoding="utf-8")

    doc = read_document(path, tmp_path)

    assert doc.kind == "faq"
    assert doc.title == "Branch questions"
    assert doc.meta == {}
    assert [s.heading for s in doc.sections] == [e["question"] for e in FAQ_ENTRIES]
    assert [s.text for s in doc.sections] == [
        f"{e['question']}\n{e['answer']}" for e in FAQ_ENTRIES
    ]
    chunks = chunk_document(doc, size=900, overlap=120)
    assert [c.id for c in chunks] == [
        "faq/branch-questions.jsonl#sunday",
        "faq/branch-questions.jsonl#pin",
        "faq/branch-questions.jsonl#override",
    ]
    assert all(c.title == "Branch questions" for c in chunks)
    sunday, pin, override = (c.metadata() for c in chunks)
    assert sunday == {
        "source": "faq/branch-questions.jsonl",
        "title": "Branch questions",
        "section": "Are branches open on Sundays?",
        "audience": "public",
        "product": "Branches",
    }
    assert (pin["tags"], pin["updated"], pin["audience"]) == ("cards,pin", "2025-01-10", "public")
    assert (override["audience"], override["url"], override["team"]) == (
        "internal",
        "https://intranet.example/waivers",
        "Lending",
    )


def test_faq_csv_with_bom_quoted_newlines_and_semicolon_tags(tmp_path: Path) -> None:
    path = tmp_path / "cards_faq.csv"
    rows = [
        ["Question", "Answer", "ID", "Audience", "Tags", ""],
        ["How long does a new card take?", "Three to five working days.", "delivery", "", "", ""],
        [],
        [
            "What if my card is lost abroad?",
            "Freeze it in the app.\nThen call +44 300 555 0199.",
            "abroad",
            "public",
            "cards; travel",
            "",
        ],
        ["How do I override a card block?", "Use the staff console.", "block", "internal", "", ""],
    ]
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    doc = read_document(path, tmp_path)
    chunks = chunk_document(doc, size=30, overlap=10)  # smaller than every entry: never split

    assert doc.kind == "faq"
    assert doc.title == "Cards faq"
    assert [c.id for c in chunks] == [
        "cards_faq.csv#delivery",
        "cards_faq.csv#abroad",
        "cards_faq.csv#block",
    ]
    assert chunks[1].section == "What if my card is lost abroad?"
    assert chunks[1].text == (
        "What if my card is lost abroad?\nFreeze it in the app.\nThen call +44 300 555 0199."
    )
    assert chunks[1].tags == ("cards", "travel")
    assert [c.audience for c in chunks] == ["public", "public", "internal"]
    assert "tags" not in chunks[0].metadata()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_faq_chunk_ids_do_not_depend_on_the_order_of_entries(tmp_path: Path, suffix: str) -> None:
    def write(entries: list[dict[str, object]]) -> dict[str, str]:
        path = tmp_path / f"faq{suffix}"
        if suffix == ".jsonl":
            path.write_text(_jsonl(entries), encoding="utf-8")
        else:
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, ["id", "question", "answer"], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(entries)
        chunks = chunk_document(read_document(path, tmp_path), size=900, overlap=120)
        return {c.section: c.id for c in chunks}

    with_ids = write(FAQ_ENTRIES)
    assert with_ids == write(FAQ_ENTRIES[::-1])
    assert sorted(with_ids.values()) == sorted(f"faq{suffix}#{e['id']}" for e in FAQ_ENTRIES)

    without_ids = [{k: v for k, v in e.items() if k != "id"} for e in FAQ_ENTRIES]
    derived = write(without_ids)
    assert derived == write(without_ids[::-1])
    assert len(set(derived.values())) == len(FAQ_ENTRIES)


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        (
            "faq.jsonl",
            '{"question": "Open on Sundays?", "answer": "No."}\n\n'
            '{"id": "x", "question": "Parking?"}\n',
            3,
            "no answer",
        ),
        ("faq.jsonl", '{"question": "Q?", "answer": "A."}\n{"question": "Q2?", ', 2, "JSON"),
        ("faq.jsonl", '["question", "answer"]\n', 1, "JSON object"),
        (
            "faq.jsonl",
            '{"id": "a", "question": "Q?", "answer": "A."}\n'
            '{"id": "a", "question": "Q2?", "answer": "B."}\n',
            2,
            "already used on line 1",
        ),
        (
            "faq.jsonl",
            '{"question": "Q?", "answer": "A.", "audience": "everyone"}\n',
            1,
            "'public' or 'internal'",
        ),
        (
            "faq.csv",
            'question,answer\n"Open on\nSundays?",No.\n\nParking?,\n',
            5,
            "no answer",
        ),
        ("faq.csv", "question,answer\nParking?,Yes.\n,Free after six.\n", 3, "no question"),
        ("faq.csv", "question,reply\nParking?,Yes.\n", 1, "no answer column"),
        ("faq.csv", "question,answer\nParking?,Yes.,extra\n", 2, "column without a name"),
        ("faq.csv", "question,answer,page\nParking?,Yes.,3\n", 2, "set by cxbot"),
    ],
)
def test_bad_faq_entry_is_an_ingest_error_naming_the_line(
    tmp_path: Path, name: str, content: str, line: int, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    with pytest.raises(IngestError, match=message) as info:
        read_document(path, tmp_path)
    assert (info.value.source, info.value.line) == (name, line)
    assert str(info.value).startswith(f"{name}:{line}: ")


def test_faq_file_without_entries_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("question,answer\n\n", encoding="utf-8")

    with pytest.raises(IngestError, match="no text") as info:
        read_document(path, tmp_path)
    assert info.value.source == "empty.csv"


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


@pytest.mark.parametrize("name", ["notes.docx", "customers.json", "README"])
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
    assert (
        {"markdown", "html", "pdf"}
        <= {d.kind for d in documents}
        <= {
            "markdown",
            "html",
            "pdf",
            "text",
            "faq",
        }
    )
    # the fixtures beside the articles are not knowledge
    assert not any(source.endswith(".json") for source in ALL_SOURCES)
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
            if len(chunk.text) > size:
                # only a table's header, rule and one row, which are never cut
                assert doc.kind != "faq"
                header, rule, row, *rest = chunk.text.split("\n")
                assert not rest and header.startswith("|") and rule.startswith("|-")
                assert row.startswith("|"), (doc.source, chunk.text)
            assert chunk.text, doc.source
            assert chunk.source == doc.source
            assert chunk.title == doc.title
            assert chunk.section in headings
            meta = chunk.metadata()
            assert meta["source"] == doc.source
            assert meta["title"] == doc.title
            assert meta["section"] == chunk.section
            assert meta["audience"] in ("public", "internal")
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
