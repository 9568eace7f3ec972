"""Shared fixtures: the real MiniLM model once per session, a Northwind project copy with
its knowledge ingested once, a fixed clock, and no network beyond loopback."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.testing import FixedClock

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("cxbot.yaml", "knowledge", "flows", "prompts", "evals")
NOW = datetime(2026, 11, 25, 10, 0)
"""Wednesday 25 November 2026, 10:00: the clock of every test that books."""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outbound connections only to loopback (and Unix sockets)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise ConnectionRefusedError(f"tests may not reach the network: {address}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder()
    model.warm_up()
    return model


def copy_project(target: Path) -> Path:
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="session")
def ingested_project(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Path:
    """A Northwind project copy whose knowledge is ingested (read-only for tests)."""
    root = copy_project(tmp_path_factory.mktemp("northwind"))
    bot = Assistant.from_dir(root, embedder=embedder)
    bot.ingest()
    bot.warm_up()  # trains the intent model once; project copies reuse the saved model
    bot.close()
    return root


@pytest.fixture
def project(tmp_path: Path, ingested_project: Path) -> Path:
    """A private copy of the ingested project (tests may change its files and stores)."""
    target = tmp_path / "project"
    shutil.copytree(ingested_project, target)
    return target


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def make_bot(
    project: Path, embedder: SentenceTransformerEmbedder, clock: FixedClock
) -> Iterator[Callable[..., Assistant]]:
    """Builds assistants over the test's project; closes them afterwards."""
    bots: list[Assistant] = []

    def make(**kwargs: object) -> Assistant:
        kwargs.setdefault("embedder", embedder)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("env", {})
        bot = Assistant.from_dir(project, **kwargs)  # type: ignore[arg-type]
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.close()


@pytest.fixture
def bot(make_bot: Callable[..., Assistant]) -> Assistant:
    return make_bot()
