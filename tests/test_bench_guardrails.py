"""`cxbot bench guardrails`: the configured units timed per turn, the embedding apart."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from cxbot.bench import bench_guardrails, format_report
from cxbot.embeddings import SentenceTransformerEmbedder


def test_guardrail_overhead_is_measured_per_unit_and_per_turn(
    project: Path, embedder: SentenceTransformerEmbedder
) -> None:
    result = bench_guardrails(project, embedder=embedder, limit=40)
    assert result.messages == 40 and result.answers > 0
    inputs = [name for name in result.units if name.startswith("input:")]
    assert inputs and {"output:grounding", "output:profanity"} <= set(result.units)
    assert all(spread.n > 0 for name, spread in result.units.items() if name.startswith("output:"))
    assert result.total.n == 40 and 0 < result.total.p50_ms <= result.total.p95_ms
    assert result.total.p95_ms <= result.total.max_ms
    assert result.embedding.p95_ms > 0
    assert result.with_embedding.p50_ms > result.total.p50_ms
    assert result.grounding_paraphrased.n >= 50
    assert result.target_p95_ms == 10.0
    assert result.meets_target == (result.total.p95_ms < 10.0)
    # the 10 ms target is what the README reports; on a busy shared CPU allow slack
    assert result.total.p95_ms < 50.0
    text = format_report({"benchmarks": {"guardrails": asdict(result)}})
    for expected in ("guardrails", "output:grounding", "p95_ms", "max_ms", "embedding"):
        assert expected in text
