"""Structure-aware chunking: tables split between rows with their header, whole list items
and sentences, FAQ entries kept whole, metadata for the vector store, stable ids."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from cxbot.rag.chunking import Chunk, chunk_document
from cxbot.rag.documents import Document, Section, read_document

HEAD = "| Branch | Address | Opening hours |\n|---|---|---|"
ROWS = [
    f"| Branch {n} | {n} {street} Street, Kingsbridge KB{n % 9 + 1} | "
    f"Monday to Friday 09:{n % 6}0-17:00{', Saturday 09:00-12:30' if n % 3 == 0 else ''} |"
    for n, street in enumerate(
        ["Harbour", "Market", "River", "Mill", "Station", "Castle", "Church", "Bridge"] * 4,
        start=1,
    )
]


def _document(tmp_path: Path, name: str, text: str) -> Document:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_document(path, tmp_path)


def _chunks(tmp_path: Path, text: str, *, size: int, overlap: int = 0) -> list[Chunk]:
    return chunk_document(_document(tmp_path, "doc.md", text), size=size, overlap=overlap)


# -- tables ------------------------------------------------------------------------------


def test_a_long_table_is_split_between_rows_with_the_header_on_every_piece(
    tmp_path: Path,
) -> None:
    text = (
        "# Branches\n\n## Addresses and hours\n\nEvery branch and when it is open:\n\n"
        + HEAD
        + "\n"
        + "\n".join(ROWS)
        + "\n\nBank holiday hours are on a separate page.\n"
    )
    size = 400
    assert len(HEAD) + len("\n".join(ROWS)) > 3 * size  # the table cannot fit in one chunk

    chunks = _chunks(tmp_path, text, size=size, overlap=80)

    table_chunks = [c for c in chunks if HEAD in c.text]
    assert len(table_chunks) >= 4
    seen_rows: list[str] = []
    for chunk in chunks:
        assert len(chunk.text) <= size
        assert chunk.section == "Addresses and hours"
        lines = chunk.text.split("\n")
        row_lines = [line for line in lines if re.match(r"\| Branch \d", line)]
        if not row_lines:
            continue
        # the header and its rule come right before the rows, and every row is whole
        start = lines.index(row_lines[0])
        assert "\n".join(lines[start - 2 : start]) == HEAD
        assert all(line in ROWS for line in row_lines)
        assert chunk.text.count(HEAD) == 1
        seen_rows += row_lines
    # every row once, in order: no row lost, cut or repeated as overlap
    assert seen_rows == ROWS
    # the introduction shares the first piece, the closing sentence the last
    assert table_chunks[0].text.startswith("Every branch and when it is open:\n\n" + HEAD)
    assert table_chunks[-1].text.endswith("Bank holiday hours are on a separate page.")


def test_a_table_that_fits_stays_whole_with_its_introduction(tmp_path: Path) -> None:
    table = HEAD + "\n" + "\n".join(ROWS[:3])
    text = f"## Hours\n\nOur three biggest branches:\n\n{table}\n"

    chunks = _chunks(tmp_path, text, size=len(table) + 40)

    assert [c.text for c in chunks] == [f"Our three biggest branches:\n\n{table}"]


def test_a_table_moves_whole_to_the_next_chunk_rather_than_splitting(tmp_path: Path) -> None:
    table = HEAD + "\n" + "\n".join(ROWS[:2])
    intro = "A paragraph long enough that the table no longer fits after it. " * 3
    text = f"## Hours\n\n{intro.strip()}\n\n{table}\n"

    chunks = _chunks(tmp_path, text, size=len(table) + 10)

    assert [c.text for c in chunks][-1] == table
    assert all(table not in c.text for c in chunks[:-1])


def test_a_header_and_one_row_longer_than_the_size_are_never_cut(tmp_path: Path) -> None:
    long_row = "| Premier | " + "Free international payments, sent or received. " * 6 + "|"
    rows = ["| Everyday | £0 |", long_row, "| Student | £0 |"]
    text = "## Fees\n\n| Account | Fee |\n|---|---|\n" + "\n".join(rows) + "\n"

    chunks = _chunks(tmp_path, text, size=120)

    assert [c.text for c in chunks] == [
        f"| Account | Fee |\n|---|---|\n{row}" for row in rows
    ]  # one row each: the long one alone, and the others cannot join it
    assert len(chunks[1].text) > 120


# -- lists and sentences -----------------------------------------------------------------


def test_list_items_are_never_cut(tmp_path: Path) -> None:
    items = [
        "- no fees on card spending or cash withdrawals abroad",
        "- free international payments, sent or received, to any country we support",
        "- the first £500 of your arranged overdraft interest-free,\nthen 29.9% EAR variable",
        "- worldwide family travel insurance",
        "- free express card delivery and free printed copy statements when you ask",
        "- higher daily limits: £1,000 cash and £10,000 card spending",
        "- a dedicated phone line, open Monday to Friday 08:00-20:00",
    ]
    text = "## Premier\n\nFor £15 a month you get:\n\n" + "\n".join(items) + "\n"

    chunks = _chunks(tmp_path, text, size=160, overlap=60)

    assert len(chunks) >= 3
    for chunk in chunks:
        assert len(chunk.text) <= 160
        # every line that starts an item is followed by the rest of that item
        for item in items:
            first = item.split("\n")[0]
            if first in chunk.text:
                assert item in chunk.text, (item, chunk.text)
        body = chunk.text.replace("For £15 a month you get:", "").strip()
        assert all(item in items for item in re.split(r"\n(?=- )", body)), chunk.text
    assert all(any(item in c.text for c in chunks) for item in items)


def test_long_paragraphs_are_cut_between_sentences(tmp_path: Path) -> None:
    sentences = [
        "Harbour Street has level access and automatic doors at the main entrance.",
        "It is the only branch with a public accessible toilet.",
        "Market Square has a level entrance from the square.",
        "The advisor rooms are on the ground floor, next to the counter.",
        "Riverside has a ramp at the side entrance on Mill Lane.",
        "Ring the bell and a colleague will open the door for you.",
        "Old Town is in a listed building with two steps at the front.",
        "A colleague will set up our portable ramp if you ask at the counter.",
    ]
    text = "## Getting in\n\n" + " ".join(sentences) + "\n"

    chunks = _chunks(tmp_path, text, size=150)

    assert len(chunks) >= 4
    rebuilt: list[str] = []
    for chunk in chunks:
        assert len(chunk.text) <= 150
        parts = re.split(r"(?<=\.) ", chunk.text)
        assert all(part in sentences for part in parts), chunk.text
        rebuilt += parts
    assert rebuilt == sentences  # overlap 0: each sentence once, in order


def test_overlap_repeats_the_last_whole_sentences(tmp_path: Path) -> None:
    sentences = [f"Rule {n} applies to every branch and every account type." for n in range(12)]
    text = "## Rules\n\n" + " ".join(sentences) + "\n"

    chunks = _chunks(tmp_path, text, size=200, overlap=60)

    assert len(chunks) >= 4
    for before, after in itertools.pairwise(chunks):
        last = re.split(r"(?<=\.) ", before.text)[-1]
        assert after.text.startswith(last)  # one 55-character sentence fits the overlap
        assert after.text != last


def test_a_sentence_longer_than_the_size_is_cut_between_words(tmp_path: Path) -> None:
    words = [f"word{n}" for n in range(60)]
    text = "## Long\n\n" + " ".join(words) + ".\n"

    chunks = _chunks(tmp_path, text, size=80)

    assert len(chunks) >= 5
    assert all(len(c.text) <= 80 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == [*words[:-1], words[-1] + "."]


# -- FAQ entries -------------------------------------------------------------------------


def test_faq_entries_are_one_chunk_each_never_split_or_merged(tmp_path: Path) -> None:
    long_answer = "Call us on 0300 555 0199 at any time, day or night. " * 10
    path = tmp_path / "faq.jsonl"
    entries = [
        {"id": "short-1", "question": "Do you open on Sundays?", "answer": "No."},
        {"id": "short-2", "question": "Is there parking?", "answer": "Yes, free."},
        {"id": "long", "question": "How do I report a lost card?", "answer": long_answer},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    document = read_document(path, tmp_path)

    for size in (60, 5000):
        chunks = chunk_document(document, size=size, overlap=20)
        assert [c.id for c in chunks] == [
            "faq.jsonl#short-1",
            "faq.jsonl#short-2",
            "faq.jsonl#long",
        ]
        assert [c.section for c in chunks] == [
            "Do you open on Sundays?",
            "Is there parking?",
            "How do I report a lost card?",
        ]
        assert chunks[0].text == "Do you open on Sundays?\nNo."
        assert chunks[2].text == "How do I report a lost card?\n" + long_answer.strip()
    # the question is embedded once, after the title
    assert chunks[0].embed_text == "Faq\nDo you open on Sundays?\nNo."


# -- metadata ----------------------------------------------------------------------------


def test_metadata_always_has_audience_and_the_other_fields_only_when_set(tmp_path: Path) -> None:
    plain = _chunks(tmp_path, "# Opening hours\n\nWe open at nine.\n", size=900)[0]
    assert plain.audience == "public"
    assert plain.metadata() == {
        "source": "doc.md",
        "title": "Opening hours",
        "section": "Opening hours",
        "audience": "public",
    }

    tagged = chunk_document(
        _document(
            tmp_path,
            "staff.md",
            "---\naudience: internal\nproduct: Premier Current Account\n"
            "url: https://intranet.example/premier\nupdated: 2025-03-01\n"
            "tags: [fees, premier]\nowner: Payments team\n---\n"
            "# Premier fee waivers\n\nWaive the fee once a year on request.\n",
        ),
        size=900,
        overlap=0,
    )[0]
    assert (tagged.audience, tagged.product, tagged.url, tagged.updated, tagged.tags) == (
        "internal",
        "Premier Current Account",
        "https://intranet.example/premier",
        "2025-03-01",
        ("fees", "premier"),
    )
    meta = tagged.metadata()
    assert meta == {
        "source": "staff.md",
        "title": "Premier fee waivers",
        "section": "Premier fee waivers",
        "audience": "internal",
        "product": "Premier Current Account",
        "url": "https://intranet.example/premier",
        "updated": "2025-03-01",
        "tags": "fees,premier",
        "owner": "Payments team",
    }
    # Chroma takes scalar metadata values only
    assert all(isinstance(value, str | int | float | bool) for value in meta.values())


def test_section_metadata_overrides_the_documents(tmp_path: Path) -> None:
    document = Document(
        source="mixed.md",
        title="Mixed",
        kind="markdown",
        content_hash="0" * 64,
        sections=(
            Section("Everyone may read this."),
            Section("Staff only.", "Staff", meta={"audience": "internal", "tags": "ops"}),
        ),
        meta={"audience": "public", "product": "Savings", "tags": "general"},
    )

    public, internal = chunk_document(document, size=900, overlap=0)

    assert (public.audience, public.product, public.tags) == ("public", "Savings", ("general",))
    assert (internal.audience, internal.product, internal.tags) == ("internal", "Savings", ("ops",))
    assert internal.metadata()["audience"] == "internal"
    assert internal.metadata()["tags"] == "ops"


# -- ids ---------------------------------------------------------------------------------


def test_same_content_gives_the_same_ids_and_other_content_other_ids(tmp_path: Path) -> None:
    text = "## Addresses\n\n" + HEAD + "\n" + "\n".join(ROWS) + "\n"
    first = _chunks(tmp_path, text, size=300)
    again = _chunks(tmp_path, text, size=300)
    changed = _chunks(tmp_path, text.replace("Branch 32 ", "Branch 33 "), size=300)

    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first) > 3
    assert [c.id for c in changed][:-1] == [c.id for c in first][:-1]
    assert changed[-1].id != first[-1].id
