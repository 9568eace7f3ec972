"""Fuzzing the knowledge readers and the chunker: any file of a supported type gives a
document whose chunks have distinct ids and text, or an :class:`~cxbot.errors.IngestError`
naming the file (and a line within it, when known)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fuzzing import ROOT, SLOW_EXAMPLES, default_examples, fuzz, json_values, mutated_text
from hypothesis import strategies as st

from cxbot.errors import IngestError
from cxbot.rag.chunking import chunk_document
from cxbot.rag.documents import read_document

KNOWLEDGE = ROOT / "knowledge"
MARKDOWN = [p.read_text(encoding="utf-8") for p in sorted(KNOWLEDGE.rglob("*.md"))]
HTML = [p.read_text(encoding="utf-8") for p in sorted(KNOWLEDGE.rglob("*.html"))]
FAKE_ROOT = Path("/knowledge")

keys = st.sampled_from(
    ["title", "audience", "product", "url", "updated", "tags", "source", "section", "id", "x"]
) | st.text(min_size=1, max_size=10)
yaml_values = st.one_of(
    json_values(4).map(json.dumps),
    st.text(max_size=30),
    st.sampled_from(["internal", "public", "2025-03-01", "[a, b]", "{a: 1}", "!tag x", "|"]),
)


@st.composite
def front_matter(draw: st.DrawFn) -> str:
    lines = [f"{draw(keys)}: {draw(yaml_values)}" for _ in range(draw(st.integers(0, 5)))]
    close = draw(st.sampled_from(["---", "...", "--- ", ""]))
    body = draw(st.sampled_from(MARKDOWN) | st.text(max_size=300))
    return "\n".join(["---", *lines, close, body])


@st.composite
def html_page(draw: st.DrawFn) -> str:
    tags = st.sampled_from(["p", "div", "h1", "h2", "nav", "table", "tr", "td", "li", "script"])
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        tag = draw(tags)
        parts.append(f"<{tag}>{draw(st.text(max_size=60))}</{tag}>")
    meta = "".join(
        f'<meta name="{draw(keys)}" content="{draw(st.text(max_size=20))}">'
        for _ in range(draw(st.integers(0, 3)))
    )
    return f"<html><head>{meta}<title>{draw(st.text(max_size=20))}</title></head>" + (
        f"<body>{''.join(parts)}</body></html>"
    )


@st.composite
def faq_jsonl(draw: st.DrawFn) -> str:
    entry = st.fixed_dictionaries(
        {},
        optional={
            "question": st.text(max_size=40) | json_values(3),
            "answer": st.text(max_size=80) | json_values(3),
            "id": st.text(max_size=8) | st.integers() | st.none(),
            "audience": st.sampled_from(["public", "internal", "staff"]),
            "tags": st.lists(st.text(max_size=6), max_size=3) | st.text(max_size=10),
            "updated": st.sampled_from(["2025-01-02", "yesterday", ""]),
        },
    )
    rows = draw(st.lists(entry.map(json.dumps) | json_values(4).map(json.dumps), max_size=6))
    blank = draw(st.sampled_from(["\n", "\n\n", "\r\n"]))
    return blank.join(rows)


@st.composite
def faq_csv(draw: st.DrawFn) -> str:
    header = draw(
        st.lists(
            st.sampled_from(["question", "Answer", "id", "audience", "tags", "updated", "x"])
            | st.text(max_size=8),
            min_size=1,
            max_size=6,
        )
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for _ in range(draw(st.integers(0, 6))):
        writer.writerow(draw(st.lists(st.text(max_size=30), max_size=len(header) + 1)))
    text = out.getvalue()
    return draw(st.sampled_from(["", "\ufeff"])) + text


def _encoded(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return texts.map(lambda t: t.encode("utf-8", errors="surrogatepass"))


documents = st.one_of(
    st.tuples(st.just(".md"), _encoded(front_matter() | mutated_text(st.sampled_from(MARKDOWN)))),
    st.tuples(st.just(".md"), _encoded(st.text(max_size=500))),
    st.tuples(st.just(".html"), _encoded(html_page() | mutated_text(st.sampled_from(HTML)))),
    st.tuples(st.just(".txt"), _encoded(st.text(max_size=500))),
    st.tuples(st.just(".jsonl"), _encoded(faq_jsonl())),
    st.tuples(st.just(".csv"), _encoded(faq_csv())),
    st.tuples(st.sampled_from([".md", ".html", ".txt", ".jsonl", ".csv", ".pdf"]), st.binary()),
)
sizes = st.tuples(st.integers(20, 1500), st.integers(0, 400))


def check(document: tuple[str, bytes], size: tuple[int, int]) -> None:
    suffix, raw = document
    path = FAKE_ROOT / "sub" / f"doc{suffix}"
    try:
        doc = read_document(path, FAKE_ROOT, raw)
    except IngestError as err:
        assert err.source == "sub/doc" + suffix
        assert err.line is None or 1 <= err.line <= raw.count(b"\n") + 1, err
        return
    assert doc.source == "sub/doc" + suffix and doc.sections
    chunks = chunk_document(doc, size=size[0], overlap=size[1])
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids)), ids
    assert all(c.text.strip() for c in chunks)


def test_ingest_parsers_fuzz() -> None:
    fuzz(default_examples(200), check, documents, sizes)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 10,000 examples; minutes on a busy 2-core machine
def test_ingest_parsers_fuzz_10k() -> None:
    fuzz(SLOW_EXAMPLES, check, documents, sizes)
