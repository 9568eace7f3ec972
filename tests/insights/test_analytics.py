"""Insights over a simulated traffic log match the simulator's own tally exactly; the HTML
page renders in headless Chromium; the CLI prints and writes the same report."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxbot.cli import app
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.insights import InsightsReport, analyse, render_html
from cxbot.insights.simulate import GroundTruth
from tests.insights.conftest import ROOT, SimulatedLog, run_simulation

CHROMIUM = Path("/usr/bin/chromium")


def assert_matches(report: InsightsReport, truth: GroundTruth) -> None:
    assert report.conversations == truth.conversations
    assert report.turns == truth.turns
    assert report.contained == truth.contained
    assert report.handed_off == truth.handed_off
    assert report.handoff_reasons == dict(truth.handoff_reasons)
    assert report.intents == dict(truth.intents)
    assert report.routes == dict(truth.routes)
    assert report.understood_turns == truth.understood_turns
    assert report.out_of_scope == truth.out_of_scope
    assert report.retrieval_turns == truth.retrieval_turns
    assert report.dont_know == truth.dont_know
    assert {w.week: w.conversations for w in report.weeks} == dict(truth.conversations_by_week)
    assert report.recorded_turns == truth.turns
    assert not report.notes  # every turn has its record


def test_insights_match_the_simulators_tally(simulated_log: SimulatedLog) -> None:
    truth = simulated_log.truth
    report = analyse(simulated_log.out / "conversations.sqlite")
    assert truth.conversations == 60 and truth.turns > 60
    # the log mixes what a week of real traffic has
    assert truth.handed_off > 0 and truth.contained > 0 and truth.out_of_scope > 0
    assert len(truth.intents) >= 4 and truth.routes["flow"] > 0 and truth.routes["blocked"] > 0
    assert len(report.weeks) >= 4
    assert_matches(report, truth)

    assert report.containment_rate == round(truth.contained / truth.conversations, 4)
    assert report.flows and sum(f.started for f in report.flows) > 0
    for flow in report.flows:
        ended = flow.completed + flow.cancelled + flow.handed_off + flow.abandoned
        assert ended <= flow.started
        assert sum(flow.drop_off.values()) == flow.handed_off + flow.abandoned
    assert report.guardrail_blocks().get("injection", 0) > 0
    stages = {s.stage: s for s in report.latency}
    assert stages["total"].turns == truth.turns
    assert stages["nlu"].turns == truth.understood_turns
    assert 0 < stages["total"].p50 <= stages["total"].p95 <= stages["total"].p99
    assert report.turns_to_resolution is not None and report.turns_to_resolution >= 1


def test_since_keeps_the_later_turns(simulated_log: SimulatedLog) -> None:
    full = analyse(simulated_log.out / "conversations.sqlite")
    year, week = full.weeks[2].week.split("-W")
    monday = datetime.fromisocalendar(int(year), int(week), 1)
    later = analyse(simulated_log.out / "conversations.sqlite", since=monday)
    assert [w.week for w in later.weeks] == [w.week for w in full.weeks[2:]]
    assert later.conversations == sum(w.conversations for w in full.weeks[2:])
    assert later.turns < full.turns


def test_report_json_is_plain_data(simulated_log: SimulatedLog) -> None:
    report = analyse(simulated_log.out / "conversations.sqlite")
    data = json.loads(report.to_json_text())
    assert data["conversations"] == simulated_log.truth.conversations
    assert data["rates"]["containment"] == report.containment_rate
    assert data["intents"] == dict(simulated_log.truth.intents)
    assert data["guardrail_blocks"] == report.guardrail_blocks()


def test_cli_prints_and_writes_the_report(simulated_log: SimulatedLog, tmp_path: Path) -> None:
    db = simulated_log.out / "conversations.sqlite"
    result = CliRunner().invoke(
        app,
        [
            "insights",
            "--dir",
            str(simulated_log.project),
            "--db",
            str(db),
            "--json",
            str(tmp_path / "insights.json"),
            "--html",
            str(tmp_path / "insights.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    truth = simulated_log.truth
    assert f"Conversations {truth.conversations} · customer turns {truth.turns}" in result.output
    assert "Containment" in result.output and "Latency ms" in result.output
    written = json.loads((tmp_path / "insights.json").read_text())
    assert written == json.loads(analyse(db).to_json_text())
    assert (tmp_path / "insights.html").read_text().startswith("<!DOCTYPE html>")

    bad = CliRunner().invoke(app, ["insights", "--db", str(db), "--since", "last tuesday"])
    assert bad.exit_code != 0 and "not a date" in bad.output


def test_page_structure(simulated_log: SimulatedLog) -> None:
    report = analyse(simulated_log.out / "conversations.sqlite")
    page = render_html(report, title="Northwind <Bank>")
    assert page.startswith("<!DOCTYPE html>") and "Northwind &lt;Bank&gt;" in page
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "https://" not in page
    for section in ("trends", "intents", "handoffs", "flows", "guardrails", "latency"):
        assert f'data-section="{section}"' in page
    assert page.count("<svg") >= 8
    assert page.count('class="line trend"') == 4
    for name, count in report.intents.items():
        assert f'data-label="{name}" data-value="{float(count)}"' in page
    assert f"{report.containment_rate * 100:.1f}%" in page  # type: ignore[operator]


def render_in_chromium(report: InsightsReport, tmp_path: Path, name: str) -> Path:
    """Open the page of ``report`` in headless Chromium, check what it shows, save a screenshot."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run should install chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI requires it")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / f"{name}.html"
    page_file.write_text(render_html(report, title="Northwind Bank"), encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_file.as_uri())
            tile = page.locator('[data-kpi="containment"] .tile-value')
            assert tile.inner_text() == f"{report.containment_rate * 100:.1f}%"  # type: ignore[operator]
            assert page.locator("svg").count() >= 8
            box = page.locator('[data-section="trends"] svg').first.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 200
            bars = page.locator("rect.bar")
            assert bars.count() >= len(report.intents)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    for folder in filter(None, [os.environ.get("CXBOT_ARTIFACTS"), str(ROOT / "reports")]):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(folder) / f"{name}.png")
    return shot


@pytest.mark.integration
@pytest.mark.browser
def test_page_renders_in_headless_chromium(simulated_log: SimulatedLog, tmp_path: Path) -> None:
    report = analyse(simulated_log.out / "conversations.sqlite")
    render_in_chromium(report, tmp_path, "insights-report")


@pytest.mark.slow
def test_two_thousand_conversations(
    ingested_project: Path, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(ingested_project, project)
    truth = run_simulation(project, embedder, tmp_path / "sim", conversations=2000, seed=0)
    report = analyse(tmp_path / "sim" / "conversations.sqlite")
    assert truth.conversations == 2000 and truth.sources.get("banking77", 0) > 0
    assert_matches(report, truth)
    assert report.handed_off > 0 and report.guardrail_blocks().get("injection", 0) > 0
    render_in_chromium(report, tmp_path, "insights-2000")
