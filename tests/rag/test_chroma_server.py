"""The knowledge vectors on a Chroma server (``storage.chroma_url``): a real ``chroma run``
process, ingest through it, answers with citations, a second worker sharing it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import BackendError
from cxbot.rag.store import ChromaStore
from cxbot.testing import FixedClock

pytestmark = pytest.mark.integration  # spawns a Chroma server

NOW = datetime(2026, 11, 25, 10, 0)
CHROMA = Path(sys.executable).parent / "chroma"
DOCS = {
    "safe-deposit-boxes.md": """# Safe deposit boxes

Safe deposit boxes are available at the Old Town and Riverside branches. A small box costs
£85 a year and a large box costs £140 a year, paid annually in advance. You can visit your
box during branch opening hours with photo ID and your box key.
""",
    "gift-cards.md": """# Gift cards

Northwind gift cards can be loaded with any amount from £10 to £500. They are valid for
twelve months from purchase and can be used wherever Mastercard is accepted.
""",
}
QUESTION = "How much does a safe deposit box cost per year?"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _close_clients(port: int) -> None:
    """Close the connections of the chromadb HTTP clients made for this server: chromadb
    keeps every client's system in a class-level cache and never closes its httpx session."""
    from chromadb.api.fastapi import FastAPI
    from chromadb.api.shared_system_client import SharedSystemClient

    cache = SharedSystemClient._identifier_to_system
    for identifier, system in list(cache.items()):
        if str(system.settings.chroma_server_http_port) == str(port):
            system.instance(FastAPI)._session.close()
            del cache[identifier]


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    """A Chroma server on a free loopback port, stopped after the test."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "chroma-server.log").open("wb")
    server = subprocess.Popen(
        [
            str(CHROMA),
            "run",
            "--path",
            str(tmp_path / "chroma-server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited: {(tmp_path / 'chroma-server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the Chroma server did not answer its heartbeat within 60 s")
                time.sleep(0.1)
        yield url
    finally:
        _close_clients(port)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def server_project(tmp_path: Path, ingested_project: Path) -> Path:
    """The Northwind project with a small knowledge folder and no local vector store (the
    trained intent model is kept)."""
    root = tmp_path / "project"
    shutil.copytree(ingested_project, root)
    storage = root / ".cxbot"
    shutil.rmtree(storage / "chroma")
    for name in ("ingest.sqlite", "lexical.sqlite"):
        (storage / name).unlink(missing_ok=True)
    knowledge = root / "knowledge" / "small"
    knowledge.mkdir()
    for name, text in DOCS.items():
        (knowledge / name).write_text(text, encoding="utf-8")
    return root


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        "CXBOT_STORAGE__CHROMA_URL": url,
        "CXBOT_KNOWLEDGE__DIR": "knowledge/small",
        "CXBOT_NLU__MODEL_DIR": ".cxbot/nlu",
        **extra,
    }


def test_ingest_and_answer_through_a_chroma_server(
    chroma_url: str, server_project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    bot = Assistant.from_dir(
        server_project, embedder=embedder, clock=FixedClock(NOW), env=_env(chroma_url)
    )
    try:
        assert isinstance(bot.vector_store, ChromaStore)
        assert bot.vector_store.url == chroma_url

        report = bot.ingest()
        reply = bot.respond("server-answer", QUESTION)
    finally:
        bot.close()

    assert sorted(report.added) == sorted(DOCS)
    storage = server_project / ".cxbot"
    assert not (storage / "chroma").exists()  # no embedded store was written
    assert (storage / "ingest.sqlite").is_file()  # the manifest stays local

    import chromadb
    from chromadb.config import Settings

    host, port = chroma_url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )
    stored = client.get_collection("knowledge").get(include=["metadatas"])
    assert len(stored["ids"]) == report.chunks_total
    assert {m["source"] for m in stored["metadatas"] or []} == set(DOCS)

    assert reply.route == "rag"
    assert reply.citations[0].source == "safe-deposit-boxes.md"
    assert "£85" in reply.text


def test_a_second_worker_answers_from_the_shared_server_without_ingesting(
    chroma_url: str, server_project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    first = Assistant.from_dir(server_project, embedder=embedder, env=_env(chroma_url))
    try:
        first.ingest()
    finally:
        first.close()
    worker = Assistant.from_dir(
        server_project,
        embedder=embedder,
        env=_env(chroma_url, CXBOT_STORAGE__DIR=".worker"),
    )
    try:
        reply = worker.respond("worker-answer", QUESTION)
    finally:
        worker.close()

    assert not (server_project / ".worker" / "chroma").exists()
    assert reply.route == "rag"
    assert reply.citations[0].source == "safe-deposit-boxes.md"


def test_an_unreachable_server_is_a_backend_error(
    server_project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    bot = Assistant.from_dir(
        server_project, embedder=embedder, env=_env(f"http://127.0.0.1:{_free_port()}")
    )
    try:
        with pytest.raises(BackendError, match="vector store unavailable"):
            bot.ingest()
    finally:
        bot.close()
