"""Insights: what real conversations say about the assistant, and what to teach it next.

- :func:`analyse` — containment, handoffs, out of scope, intents and their trend, flows and
  where they stop, guardrail verdicts, "I don't know", latency per stage
  (:mod:`cxbot.insights.analytics`); :func:`render_html` draws the report as one page.
- :func:`suggest` — clusters of the messages the assistant did not understand, and of the
  questions it could not answer, as a reviewable YAML patch (:mod:`cxbot.insights.suggest`).
- :mod:`cxbot.insights.simulate` — replayed traffic with its own tally, to check both.

Everything reads the turn log of the conversation store (:mod:`cxbot.conversation.turns`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cxbot.conversation.turns import SQLiteTurnLog
from cxbot.insights.analytics import (
    FlowStats,
    GuardrailCount,
    InsightsReport,
    StageLatency,
    WeekStats,
    analyse_turns,
    summary_lines,
)

__all__ = [
    "FlowStats",
    "GuardrailCount",
    "InsightsReport",
    "StageLatency",
    "WeekStats",
    "analyse",
    "open_log",
    "render_html",
    "summary_lines",
]


def open_log(source: SQLiteTurnLog | str | Path) -> SQLiteTurnLog:
    """The turn log of a conversations file (``conversations.sqlite``), or ``source`` itself."""
    return source if isinstance(source, SQLiteTurnLog) else SQLiteTurnLog(source)


def analyse(source: SQLiteTurnLog | str | Path, since: datetime | None = None) -> InsightsReport:
    """The insights of every turn stored in ``source`` at or after ``since``."""
    log = open_log(source)
    try:
        return analyse_turns(log.turns(since), since=since)
    finally:
        if log is not source:
            log.close()


def render_html(report: InsightsReport, *, title: str = "cxbot") -> str:
    """``report`` as one self-contained HTML page with charts."""
    from cxbot.insights.html import render_insights

    return render_insights(report, title=title)
