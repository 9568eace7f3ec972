"""A `cxbot ingest` process killed with SIGKILL midway: the next ingest completes the job and
leaves no duplicate or orphan chunk (real process, MiniLM, Chroma, SQLite)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import chromadb
import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.rag.chunking import chunk_document
from cxbot.rag.documents import read_document

KNOWLEDGE = Path("knowledge/northwind")


def _recorded(manifest: Path) -> int:
    if not manifest.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet, or busy
        return 0


def _chunks_by_source(storage: Path) -> dict[str, list[str]]:
    client = chromadb.PersistentClient(
        path=str(storage / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    by_source: dict[str, list[str]] = {}
    for name in ("knowledge", "knowledge_internal"):
        got = client.get_collection(name).get(include=["metadatas"])
        for chunk_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            by_source.setdefault(str(meta["source"]), []).append(chunk_id)
    return by_source


@pytest.mark.timeout(600)
def test_ingest_killed_midway_is_completed_by_the_next_run(
    tmp_path: Path, ingested_project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    project = tmp_path / "project"
    shutil.copytree(ingested_project, project, ignore=shutil.ignore_patterns(".cxbot"))
    storage = project / ".cxbot"
    manifest = storage / "ingest.sqlite"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CXBOT_KNOWLEDGE__BATCH_CHUNKS": "16",  # many small batches: a kill lands mid-job
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("cxbot")), "ingest", "--dir", str(project)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while _recorded(manifest) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is not None:
        assert process.stderr is not None
        pytest.fail(f"ingest ended before it could be killed: {process.stderr.read()!r}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.stderr is not None
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    root = project / KNOWLEDGE
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix in (".md", ".html", ".pdf")
    )
    killed_at = _recorded(manifest)
    assert 3 <= killed_at < len(files)  # some documents done, the rest not

    bot = Assistant.from_dir(project, embedder=embedder, env={})
    try:
        report = bot.ingest()
        lexical = bot.pipeline.retriever.lexical
        assert lexical is not None
        lexical_count = lexical.count()
    finally:
        bot.close()

    assert report.errors == ()
    assert len(report.added) + len(report.updated) == len(files) - killed_at
    stored = _chunks_by_source(storage)
    assert sorted(stored) == files  # every document, no orphan source
    total = 0
    for source in files:
        document = read_document(root / source, root)
        expected = [c.id for c in chunk_document(document, size=900, overlap=120)]
        assert sorted(stored[source]) == sorted(expected), source  # no duplicate, no stale
        total += len(expected)
    assert lexical_count == total
    with sqlite3.connect(manifest) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
        assert conn.execute("SELECT SUM(chunks) FROM documents").fetchone()[0] == total
