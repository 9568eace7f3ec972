"""``cxbot eval handoff``: the Northwind conversations meet their bar, a wrong expectation
shows in the metrics, and the conversations file stays out of the suite loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxbot.assistant import Assistant
from cxbot.cli import app
from cxbot.errors import ConfigError
from cxbot.evals.handoff import evaluate_handoffs, load_conversations
from cxbot.evals.suite import load_suites
from cxbot.handoff.triggers import HANDOFF_REASONS

CONVERSATIONS = "evals/northwind/handoff/conversations.yml"


def test_northwind_conversations_meet_the_bar(project: Path, bot: Assistant) -> None:
    loaded = load_conversations(project / CONVERSATIONS)
    expected = [c.expect.reason for c in loaded.conversations if c.expect.handoff]
    assert len(loaded.conversations) >= 30
    assert all(expected.count(reason) >= 3 for reason in HANDOFF_REASONS)
    assert sum(not c.expect.handoff for c in loaded.conversations) >= 8

    report = evaluate_handoffs(bot, loaded)
    metrics = report["metrics"]
    assert metrics["trigger_precision"] >= 0.95, report["failures"]
    assert metrics["trigger_recall"] >= 0.95, report["failures"]
    assert metrics["summary_field_recall"] >= 0.95, report["failures"]
    assert metrics["no_handoff_accuracy"] == 1.0
    assert set(report["by_reason"]) == set(HANDOFF_REASONS)
    after_hours = [r for r in report["results"] if r["fields"].get("after_hours")]
    assert after_hours and all(r["summary"]["after_hours"] is not None for r in after_hours)


def test_a_wrong_expectation_lowers_precision_and_field_recall(
    tmp_path: Path, bot: Assistant
) -> None:
    path = tmp_path / "conversations.yml"
    path.write_text(
        """
conversations:
  - id: right
    turns: [I want to talk to a human]
    expect: {handoff: true, reason: customer_request, queue: customer-care}
  - id: wrong-reason
    turns: ["I've been scammed, someone took money from my account"]
    expect: {handoff: true, reason: negative_sentiment, summary: {topic: bereavement}}
  - id: wrong-no-handoff
    turns: [Can I speak to a real person please?]
    expect: {handoff: false}
""",
        encoding="utf-8",
    )
    report = evaluate_handoffs(bot, load_conversations(path))
    metrics = report["metrics"]
    assert metrics["trigger_precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert metrics["trigger_recall"] == 0.5
    assert metrics["summary_field_recall"] == 0.0
    assert metrics["no_handoff_accuracy"] == 0.0
    assert report["by_reason"]["policy_topic"]["predicted"] == 1
    assert sorted(report["failures"]) == ["wrong-no-handoff", "wrong-reason"]


def test_the_conversations_file_is_not_a_suite(project: Path) -> None:
    suites = load_suites(project / "evals")
    assert all("handoff/conversations" not in s.suite for s in suites)


def test_an_inconsistent_expectation_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "conversations:\n  - id: x\n    turns: [hi]\n    expect: {handoff: true}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"bad\.yml"):
        load_conversations(path)


def test_cli_writes_the_json_report(project: Path, tmp_path: Path) -> None:
    path = tmp_path / "few.yml"
    path.write_text(
        """
conversations:
  - id: fraud
    turns: ["I've been scammed, someone took money from my account"]
    expect: {handoff: true, reason: policy_topic, queue: fraud-team, summary: {topic: fraud}}
  - id: estate-agent
    turns: [My estate agent is asking for proof of my mortgage in principle]
    expect: {handoff: false}
""",
        encoding="utf-8",
    )
    out = tmp_path / "handoff.json"
    args = ["eval", "handoff", "--project", str(project), "--conversations", str(path)]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "handoff: 2 conversations, trigger precision 100.0%" in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["metrics"]["trigger_recall"] == 1.0
    assert report["metrics"]["summary_field_recall"] == 1.0
