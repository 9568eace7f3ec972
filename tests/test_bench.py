"""`cxbot bench` at tiny sizes on a copy of the ingested sample project: the report's
shape and the sanity of its figures (not their absolute values)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cxbot.bench import ROUTES, SUITES, Latency, format_report, run_benchmarks, write_corpus
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import ConfigError

TURNS = 3
SCALE = 500
INGEST = 40
QUERIES = 50
KNOWLEDGE = "knowledge/northwind"
KEPT = ("cards", "disputes", "fees")

Snapshot = set[tuple[str, int, int]]


@dataclass(frozen=True)
class BenchRun:
    report: dict[str, Any]
    before: Snapshot
    after: Snapshot


def snapshot(root: Path) -> Snapshot:
    return {
        (p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def bench_run(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
) -> BenchRun:
    project = tmp_path_factory.mktemp("bench") / "project"
    shutil.copytree(ingested_project, project)
    for folder in (project / KNOWLEDGE).iterdir():  # a small knowledge base: a quick ingest
        if folder.is_dir() and folder.name not in KEPT:
            shutil.rmtree(folder)
    before = snapshot(project)
    report = run_benchmarks(
        project,
        turns=TURNS,
        scale=[SCALE],
        ingest_scale=[INGEST],
        queries=QUERIES,
        import_runs=2,
        embedder=embedder,
    )
    return BenchRun(report, before, snapshot(project))


@pytest.fixture
def report(bench_run: BenchRun) -> dict[str, Any]:
    return bench_run.report


def assert_latency(figures: dict[str, Any], n: int) -> None:
    assert figures["n"] == n
    assert figures["p95_ms"] >= figures["p50_ms"] > 0
    assert figures["mean_ms"] > 0


def test_report_describes_the_machine_then_every_benchmark(report: dict[str, Any]) -> None:
    assert list(report)[:2] == ["machine", "benchmarks"]
    machine = report["machine"]
    assert machine["python"] and machine["platform"] and machine["cpu_model"]
    assert machine["cores_usable"] > 0 and machine["memory_gb"] > 0
    assert machine["torch"]
    assert isinstance(machine["openblas_coretype_set"], bool)
    assert list(report["benchmarks"]) == list(SUITES)
    json.dumps(report)  # JSON-ready as it is


def test_the_project_is_never_written(bench_run: BenchRun) -> None:
    assert bench_run.after == bench_run.before


def test_import_loads_no_heavy_library(report: dict[str, Any]) -> None:
    figures = report["benchmarks"]["import"]
    assert figures["heavy_modules"] == ()
    assert figures["import_cxbot_ms"] > 0 and figures["python_pass_ms"] > 0


def test_cold_start_answers_in_a_fresh_process(report: dict[str, Any]) -> None:
    figures = report["benchmarks"]["cold_start"]
    assert figures["first_route"] == "rag"
    assert figures["rss_mb"] > 0
    phases = ("import_ms", "from_dir_ms", "warm_up_ms", "first_turn_ms")
    assert all(figures[p] > 0 for p in phases)
    assert figures["process_ms"] >= sum(figures[p] for p in phases)


def test_turns_time_every_route_and_its_stages(report: dict[str, Any]) -> None:
    figures = report["benchmarks"]["turns"]
    assert figures["unexpected_routes"] == 0
    assert list(figures["routes"]) == list(ROUTES)
    for route in ROUTES:
        assert_latency(figures["routes"][route], TURNS)
    stages = figures["stages_p50_ms"]
    assert {"embedding", "guardrails", "nlu", "retrieval", "generation"} <= set(stages["rag"])
    assert "flow" in stages["flow"] and "guardrails" in stages["blocked"]
    assert figures["turns_per_s"] > 0
    assert figures["query_cache"] is False


def test_turns_compare_with_the_naive_pipeline(report: dict[str, Any]) -> None:
    baseline = report["benchmarks"]["turns"]["baseline"]
    assert_latency(baseline["latency"]["naive"], TURNS)
    assert baseline["latency"]["cxbot"] == report["benchmarks"]["turns"]["routes"]["rag"]
    cxbot_p50 = baseline["latency"]["cxbot"]["p50_ms"]
    naive_p50 = baseline["latency"]["naive"]["p50_ms"]
    assert baseline["p50_ratio"] == pytest.approx(cxbot_p50 / naive_p50, abs=0.01)


def test_ingest_embeds_one_chunk_per_synthetic_section(report: dict[str, Any]) -> None:
    figures = report["benchmarks"]["ingest"]
    assert figures["precision"] in ("fp32", "bf16")
    assert figures["chunk_size"] == 900 and figures["chunk_overlap"] == 120
    (size,) = figures["sizes"]
    assert size["target"] == INGEST and size["errors"] == 0
    assert size["corpus"]["sections"] == INGEST and 0 < size["corpus"]["documents"] < INGEST
    ours = size["cxbot"]
    assert ours["chunks"] == INGEST
    assert ours["seconds"] > 0 and ours["peak_rss_mb"] >= ours["rss_before_mb"] > 0
    cores = len(os.sched_getaffinity(0))
    assert 0 < ours["cpu_s"] <= ours["seconds"] * cores * 1.1  # at most every core, always busy
    assert ours["chunks_per_s"] == pytest.approx(INGEST / ours["seconds"], rel=0.01)
    megabytes = size["corpus"]["megabytes"]
    assert ours["mb_per_s"] == pytest.approx(megabytes / ours["seconds"], rel=0.02, abs=1e-4)


def test_ingest_compares_with_the_naive_pipeline_on_the_same_files(
    report: dict[str, Any],
) -> None:
    figures = report["benchmarks"]["ingest"]
    assert "RecursiveCharacterTextSplitter" in figures["naive_pipeline"]
    (size,) = figures["sizes"]
    ours, naive = size["cxbot"], size["naive"]
    # the naive splitter cuts whole files, so its chunks may span two sections
    assert 0 < naive["chunks"] <= INGEST
    assert naive["seconds"] > 0 and naive["peak_rss_mb"] > 0
    assert size["speedup"] == pytest.approx(naive["seconds"] / ours["seconds"], rel=0.02)
    assert size["cpu_speedup"] == pytest.approx(naive["cpu_s"] / ours["cpu_s"], rel=0.02)


def test_unchanged_reingest_is_much_faster_than_the_first(report: dict[str, Any]) -> None:
    (size,) = report["benchmarks"]["ingest"]["sizes"]
    assert size["unchanged_ms"] > 0
    assert size["first_to_unchanged"] > 3


def test_synthetic_corpus_is_seeded_and_never_repeats_a_section(
    tmp_path: Path, ingested_project: Path
) -> None:
    from cxbot.rag.chunking import chunk_document
    from cxbot.rag.documents import read_document

    knowledge = ingested_project / KNOWLEDGE
    first = write_corpus(knowledge, tmp_path / "a", 120, chunk_size=900, seed=3)
    again = write_corpus(knowledge, tmp_path / "b", 120, chunk_size=900, seed=3)
    other = write_corpus(knowledge, tmp_path / "c", 120, chunk_size=900, seed=4)
    assert first == again and first.sections == 120
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.md"))
    assert len(files) == first.documents
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    chunks = []
    for path in sorted((tmp_path / "a").rglob("*.md")):
        chunks += chunk_document(read_document(path, tmp_path / "a"), size=900, overlap=120)
    bodies = [c.text for c in chunks]
    assert len(bodies) == 120 and len(set(bodies)) == 120
    assert max(len(b) for b in bodies) <= 900
    seeded_other = {p.read_text() for p in (tmp_path / "c").rglob("*.md")}
    assert not seeded_other & {p.read_text() for p in (tmp_path / "a").rglob("*.md")}
    assert other.sections == 120


def test_retrieve_times_dense_keyword_and_hybrid_search(report: dict[str, Any]) -> None:
    figures = report["benchmarks"]["retrieve"]
    assert figures["base_chunks"] > 0 and figures["dimension"] == 384
    assert figures["k"] == 4 and figures["candidates"] >= figures["k"]
    (size,) = figures["sizes"]
    assert size["size"] == SCALE
    assert size["build_s"] > 0 and size["keyword_build_s"] > 0 and size["rss_mb"] > 0
    for search in ("dense", "keyword", "hybrid"):
        assert_latency(size[search], QUERIES)
    assert 0 < size["hybrid_hits"] <= figures["k"]


def test_a_knowledge_folder_without_markdown_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "faq.txt").write_text("Plain text only.", encoding="utf-8")
    with pytest.raises(ConfigError, match="Markdown"):
        write_corpus(tmp_path / "knowledge", tmp_path / "out", 10, chunk_size=900)


def test_retrieval_is_accepted_as_the_former_name_of_retrieve(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):  # accepted: it goes on to read the (missing) project
        run_benchmarks(tmp_path, suites=["retrieval"])
    with pytest.raises(ValueError, match="retrieval"):
        run_benchmarks(tmp_path, suites=["retrieving"])


def test_format_report_puts_the_machine_first(report: dict[str, Any]) -> None:
    text = format_report(json.loads(json.dumps(report)))
    lines = text.splitlines()
    assert lines[0].startswith("cxbot bench")
    heads = [lines.index(name) for name in ("machine", *SUITES, "summary")]
    assert heads == sorted(heads)
    assert "p50_ms" in text and "heavy_modules" in text
    assert "baseline" in text and "p50_ratio" in text
    (speedup,) = [line for line in lines if line.startswith("  ingest ")]
    ratio = report["benchmarks"]["ingest"]["sizes"][0]["speedup"]
    assert f"cxbot {ratio:.2f}x as fast" in speedup
    (store,) = [line for line in lines if line.startswith("  retrieve ")]
    assert f"retrieve {SCALE} chunks: hybrid p50/p95" in store


def test_unknown_benchmark_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="choose from"):
        run_benchmarks(tmp_path, suites=["speed"])


def test_latency_quantiles_interpolate_like_numpy() -> None:
    figures = Latency.of([float(x) for x in range(1, 101)])
    assert (figures.n, figures.p50_ms, figures.p95_ms, figures.mean_ms) == (100, 50.5, 95.05, 50.5)
    assert Latency.of([2.0]) == Latency(1, 2.0, 2.0, 2.0)
    assert Latency.of([]).n == 0


@pytest.mark.slow
def test_turns_and_retrieval_at_default_sizes(
    tmp_path: Path, ingested_project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    project = tmp_path / "project"
    shutil.copytree(ingested_project, project)
    report = run_benchmarks(
        project, suites=["turns", "retrieval"], turns=30, scale=[1000, 10000], embedder=embedder
    )
    turns = report["benchmarks"]["turns"]
    for route in ROUTES:
        assert_latency(turns["routes"][route], 30)
    assert [s["size"] for s in report["benchmarks"]["retrieve"]["sizes"]] == [1000, 10000]
    for size in report["benchmarks"]["retrieve"]["sizes"]:
        assert_latency(size["hybrid"], 200)


def test_nlu_overhead_beyond_the_shared_embedding_is_small(
    ingested_project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    from cxbot.bench import bench_nlu

    figures = bench_nlu(ingested_project, embedder=embedder, repeats=1)
    assert figures.messages >= 150
    assert 0 < figures.stage.p50_ms <= figures.stage.p95_ms < 5.0
