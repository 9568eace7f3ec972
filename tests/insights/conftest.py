"""A simulated traffic log shared by the insights tests: 60 conversations from the Northwind
eval suites (and Banking77 messages, when the dataset is on this machine) replayed once
through the real assistant."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.evals.datasets import DatasetMissing, dataset_root
from cxbot.insights.simulate import (
    GroundTruth,
    Script,
    banking77_scripts,
    plan,
    simulate,
    suite_scripts,
)

ROOT = Path(__file__).resolve().parents[2]


def banking77_or_none() -> Path | None:
    try:
        path = dataset_root(ROOT) / "banking77" / "test.csv"
    except DatasetMissing:
        return None
    return path if path.is_file() else None


def traffic(project: Path) -> tuple[list[Script], list[Script]]:
    """The project's suite conversations, and Banking77 messages when available."""
    extra: list[Script] = []
    csv = banking77_or_none()
    if csv is not None:
        extra = banking77_scripts(csv)
    return suite_scripts(project / "evals"), extra


@dataclass(frozen=True)
class SimulatedLog:
    project: Path
    out: Path
    truth: GroundTruth


def run_simulation(
    project: Path, embedder: SentenceTransformerEmbedder, out: Path, conversations: int, seed: int
) -> GroundTruth:
    scripts, extra = traffic(project)
    planned = plan(scripts, conversations, seed=seed, weeks=6, extra=extra, extra_share=0.2)
    bot = Assistant.from_dir(project, embedder=embedder, env={})
    try:
        return simulate(bot, planned, out, seed=seed)
    finally:
        bot.close()


@pytest.fixture(scope="session")
def simulated_log(
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
    tmp_path_factory: pytest.TempPathFactory,
) -> SimulatedLog:
    root = tmp_path_factory.mktemp("insights")
    project = root / "project"
    shutil.copytree(ingested_project, project)
    out = root / "sim"
    truth = run_simulation(project, embedder, out, conversations=60, seed=7)
    return SimulatedLog(project, out, truth)
