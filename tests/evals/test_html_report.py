"""The HTML eval report: page structure from a realistic report, and a real headless render."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cxbot.evals.html import _predictions, _sweep, render_html

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
NONE = "(none)"
SCRIPT_MESSAGE = '<script>alert("pwned")</script> can I book?'


def check(evaluator: str, expected: Any, got: Any) -> dict[str, Any]:
    passed = expected == got if evaluator != "citations" else bool(got)
    return {"evaluator": evaluator, "passed": passed, "expected": expected, "got": got}


def turn(
    user: str,
    reply: str,
    *,
    route: str,
    intent: str | None,
    confidence: float,
    expect_intent: str | None = None,
    expect_route: str | None = None,
    citations: tuple[str, ...] = (),
    handoff: bool = False,
) -> dict[str, Any]:
    checks = []
    if expect_route is not None:
        checks.append(check("route", expect_route, route))
    if expect_intent is not None:
        checks.append(check("intent", expect_intent, intent or NONE))
    if citations:
        checks.append(check("citations", "at least one citation", list(citations)))
    return {
        "user": user,
        "reply": reply,
        "route": route,
        "intent": intent,
        "confidence": confidence,
        "citations": list(citations),
        "handoff": handoff,
        "checks": checks,
    }


def case(suite: str, case_id: str, turns: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    error = extra.get("error")
    passed = error is None and all(c["passed"] for t in turns for c in t["checks"])
    return {
        "key": f"{suite}/{case_id}",
        "suite": suite,
        "id": case_id,
        "title": extra.get("title", ""),
        "tags": extra.get("tags", []),
        "passed": passed,
        "error": error,
        "turns": turns,
    }


def build_cases() -> list[dict[str, Any]]:
    booking_reply = "Which branch would you like to visit?\n- Leeds\n- York"
    return [
        case(
            "intents",
            "book-simple",
            [
                turn(
                    "I'd like to book an appointment",
                    booking_reply,
                    route="flow",
                    intent="book_appointment",
                    confidence=0.71,
                    expect_intent="book_appointment",
                    expect_route="flow",
                )
            ],
            tags=["booking"],
        ),
        case(
            "intents",
            "book-script-tag",
            [
                turn(
                    SCRIPT_MESSAGE,
                    booking_reply,
                    route="flow",
                    intent="book_appointment",
                    confidence=0.64,
                    expect_intent="book_appointment",
                )
            ],
            title="Markup in the user message is shown, not run",
        ),
        case(
            "intents",
            "cancel-typo",
            [
                turn(
                    "cancle my apointment pls",
                    booking_reply,
                    route="flow",
                    intent="book_appointment",
                    confidence=0.48,
                    expect_intent="cancel_appointment",
                )
            ],
            tags=["cancel", "typos"],
        ),
        case(
            "intents",
            "cancel-simple",
            [
                turn(
                    "Please cancel my appointment on Friday",
                    "Your appointment on Friday 27 November at 10:00 is cancelled.",
                    route="flow",
                    intent="cancel_appointment",
                    confidence=0.83,
                    expect_intent="cancel_appointment",
                )
            ],
        ),
        case(
            "intents",
            "lost-card",
            [
                turn(
                    "I lost my debit card",
                    "I'm sorry to hear that. I've frozen the card ending 4821.",
                    route="flow",
                    intent="report_lost_card",
                    confidence=0.92,
                    expect_intent="report_lost_card",
                )
            ],
        ),
        case(
            "out_of_scope",
            "weather",
            [
                turn(
                    "What's the weather in Leeds tomorrow?",
                    "Sorry, I can only help with Northwind Bank questions.",
                    route="fallback",
                    intent=None,
                    confidence=0.22,
                    expect_intent=NONE,
                )
            ],
        ),
        case(
            "out_of_scope",
            "pizza",
            [
                turn(
                    "Can you book me a pizza table for two?",
                    booking_reply,
                    route="flow",
                    intent="book_appointment",
                    confidence=0.41,
                    expect_intent=NONE,
                )
            ],
            tags=["confusable"],
        ),
        case(
            "out_of_scope",
            "poem",
            [
                turn(
                    "Write me a poem about interest rates",
                    "Sorry, I can only help with Northwind Bank questions.",
                    route="fallback",
                    intent=None,
                    confidence=0.18,
                    expect_intent=NONE,
                )
            ],
        ),
        case(
            "knowledge",
            "card-abroad",
            [
                turn(
                    "Can I use my card abroad?",
                    "Yes: your Northwind card works in over 200 countries [1].",
                    route="rag",
                    intent="faq",
                    confidence=0.77,
                    expect_route="rag",
                    citations=("cards/using-your-card-abroad.md",),
                ),
                turn(
                    "And are there fees?",
                    "Purchases abroad carry a 2.75% fee [1].",
                    route="rag",
                    intent="faq",
                    confidence=0.69,
                    expect_route="rag",
                    citations=("cards/fees.md", "cards/using-your-card-abroad.md"),
                ),
            ],
            tags=["rag"],
        ),
        case(
            "knowledge",
            "mortgage-handoff",
            [
                turn(
                    "I want to talk to someone about my mortgage arrears",
                    "I'm connecting you with a mortgage specialist now.",
                    route="handoff",
                    intent="human_agent",
                    confidence=0.88,
                    expect_route="rag",
                    handoff=True,
                )
            ],
        ),
        case(
            "knowledge",
            "crash",
            [],
            error="RuntimeError: retriever closed",
        ),
    ]


def build_predictions(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every turn with an intent check, as the runner reports it."""
    return [
        {
            "case": c["key"],
            "gold": chk["expected"],
            "predicted": t["intent"] or NONE,
            "confidence": t["confidence"],
        }
        for c in cases
        for t in c["turns"]
        for chk in t["checks"]
        if chk["evaluator"] == "intent"
    ]


def build_report() -> dict[str, Any]:
    cases = build_cases()
    predictions = build_predictions(cases)
    by_suite: dict[str, Any] = {}
    for c in cases:
        suite = by_suite.setdefault(c["suite"], {"cases_total": 0, "cases_passed": 0})
        suite["cases_total"] += 1
        suite["cases_passed"] += c["passed"]
    for suite in by_suite.values():
        suite["metrics"] = {"pass_rate": round(suite["cases_passed"] / suite["cases_total"], 4)}
    by_suite["intents"]["metrics"]["intent_accuracy"] = 0.8
    by_suite["out_of_scope"]["metrics"]["intent_accuracy"] = 0.6667
    by_suite["knowledge"]["metrics"].update(route_accuracy=0.6667, citation_rate=1.0)
    thresholds: list[dict[str, Any]] = [
        {"suite": "intents", "metric": "intent_accuracy", "min": 0.75, "value": 0.8},
        {"suite": "out_of_scope", "metric": "intent_accuracy", "min": 0.9, "value": 0.6667},
        {"suite": "knowledge", "metric": "citation_rate", "min": 0.9, "value": 1.0},
    ]
    for threshold in thresholds:
        threshold["passed"] = threshold["value"] >= threshold["min"]
    passed = sum(c["passed"] for c in cases)
    labels = sorted({p["gold"] for p in predictions} | {p["predicted"] for p in predictions})
    return {
        "schema_version": 1,
        "project": "Northwind Bank",
        "seed": 7,
        "started_at": "2026-11-25T21:40:00+00:00",
        "finished_at": "2026-11-25T21:41:10+00:00",
        "duration_s": 70.1,
        "machine": {"python": "3.11.7", "platform": "Linux-6.1-x86_64", "cpus": 2, "memory_gb": 24},
        "timings": {"cases_ms": {c["key"]: 40.0 for c in cases}},
        "cases_total": len(cases),
        "cases_passed": passed,
        "passed": all(t["passed"] for t in thresholds),
        "metrics": {
            "citation_rate": 1.0,
            "intent_accuracy": 0.75,
            "pass_rate": round(passed / len(cases), 4),
            "route_accuracy": 0.75,
        },
        "by_suite": by_suite,
        "thresholds": thresholds,
        "intents": {"labels": labels, "predictions": predictions},
        "cases": cases,
    }


def confusion_cells(page: str) -> dict[tuple[str, str], int]:
    pattern = r'data-gold="([^"]*)" data-predicted="([^"]*)" data-count="(\d+)"'
    return {(g, p): int(n) for g, p, n in re.findall(pattern, page)}


def test_page_structure() -> None:
    report = build_report()
    page = render_html(report)

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<link" not in page and "src=" not in page
    assert "Northwind Bank" in page
    assert f"{report['cases_passed']} / 11 passed" in page
    assert '<span class="badge fail">FAIL</span>' in page  # out_of_scope threshold missed
    assert "1 min 10.1 s" in page and "24 GB RAM" in page

    # one expandable row per case, failed ones marked
    assert report["cases_passed"] == 7
    assert page.count('<details class="case ') == 11
    assert page.count('data-passed="false"') == 4
    assert "RuntimeError: retriever closed" in page
    assert "cards/using-your-card-abroad.md" in page

    # user text is escaped: the only <script> element is the page's own
    assert page.count("<script>") == 1
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; can I book?" in page

    # thresholds: three rows, one failed
    thresholds = page.split('<table class="thresholds">')[1].split("</table>")[0]
    assert thresholds.count("<tr class=") == 3 and thresholds.count('<tr class="bad">') == 1


def test_confusion_matrix_counts() -> None:
    cells = confusion_cells(render_html(build_report()))
    labels = ["book_appointment", "cancel_appointment", "report_lost_card", NONE]
    assert set(cells) == {(g, p) for g in labels for p in labels}
    assert cells[("book_appointment", "book_appointment")] == 2
    assert cells[("cancel_appointment", "book_appointment")] == 1
    assert cells[("cancel_appointment", "cancel_appointment")] == 1
    assert cells[(NONE, NONE)] == 2
    assert cells[(NONE, "book_appointment")] == 1
    assert sum(cells.values()) == 8


def test_threshold_sweep() -> None:
    report = build_report()
    page = render_html(report)
    assert 'class="line sweep-accuracy"' in page and 'class="line sweep-recall"' in page

    points = {t: (acc, rec) for t, acc, rec in _sweep(_predictions(report))}
    assert len(points) == 21 and min(points) == 0.0 and max(points) == 1.0
    assert points[0.0] == (4 / 5, 2 / 3)  # as predicted
    assert points[0.45] == (4 / 5, 1.0)  # pizza (0.41) becomes out of scope
    assert points[0.65] == (3 / 5, 1.0)  # book-script-tag (0.64) drops out
    assert points[0.75] == (2 / 5, 1.0)
    assert points[0.95] == (0.0, 1.0)


def test_missing_sections() -> None:
    page = render_html({})
    assert "<svg" not in page
    assert "No intent predictions" in page and "No cases" in page and "No metrics" in page

    report = build_report()
    report["intents"] = {"labels": [], "predictions": []}
    report["thresholds"] = []
    page = render_html(report)
    assert "<svg" not in page and "No thresholds" in page
    assert page.count('<details class="case ') == 11


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.integration
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run should install chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI requires it")
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report()), encoding="utf-8")
    screenshot = tmp_path / "report.png"

    shot = run_chromium(
        ["--window-size=1280,2000", f"--screenshot={screenshot}", page.as_uri()],
        tmp_path / "profile-shot",
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.is_file(), shot.stderr[-2000:]
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    with Image.open(screenshot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 10
    (ROOT / "reports").mkdir(exist_ok=True)
    shutil.copyfile(screenshot, ROOT / "reports" / "eval-report.png")

    dom = run_chromium(["--dump-dom", page.as_uri()], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Northwind Bank" in dom.stdout
    assert "cancel-typo" in dom.stdout and "mortgage-handoff" in dom.stdout
    assert dom.stdout.count("<svg") == 3
