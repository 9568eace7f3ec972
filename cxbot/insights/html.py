"""The insights report as one self-contained HTML page: headline figures, weekly trends,
intents, handoff triggers, flows and where they stop, guardrail blocks and stage latency.

Like the eval report (:mod:`cxbot.evals.html`, whose SVG helpers and style this page
shares), it has no external assets and no script: charts are inline SVG drawn here, and
every text from the conversations goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from cxbot.evals.html import _CSS, _axes, _Frame, _legend, _svg, _svg_text, _unit_ticks
from cxbot.insights.analytics import InsightsReport

__all__ = ["render_insights"]

_BLUE = "#0969da"
_GREEN = "#1a7f37"
_RED = "#cf222e"
_AMBER = "#bf8700"
_PURPLE = "#8250df"
TOP_INTENTS = 20


def render_insights(report: InsightsReport, *, title: str = "cxbot") -> str:
    """The page for ``report``; ``title`` names the assistant."""
    sections = [
        _header(report, title),
        _trends(report),
        _intents(report),
        _handoffs(report),
        _flows(report),
        _guardrails(report),
        _latency(report),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Insights: {html.escape(title)}</title>\n<style>{_CSS}{_EXTRA_CSS}</style>\n"
        f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _card(title: str, body: str, section: str) -> str:
    return (
        f'<section class="card" data-section="{section}"><h2>{html.escape(title)}</h2>\n'
        f"{body}</section>"
    )


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _header(r: InsightsReport, title: str) -> str:
    period = (
        f"{r.first_turn:%Y-%m-%d} → {r.last_turn:%Y-%m-%d}"
        if r.first_turn is not None and r.last_turn is not None
        else "no turns"
    )
    tiles = [
        ("Conversations", f"{r.conversations:,}", f"{r.turns:,} customer turns", "conversations"),
        (
            "Containment",
            _pct(r.containment_rate),
            f"{r.contained:,} without a person",
            "containment",
        ),
        ("Handoff", _pct(r.handoff_rate), f"{r.handed_off:,} conversations", "handoff"),
        (
            "Out of scope",
            _pct(r.out_of_scope_rate),
            f"{r.out_of_scope:,} of {r.understood_turns:,} turns",
            "out_of_scope",
        ),
        ("Fallback", _pct(r.fallback_rate), f"{r.failed_turns:,} unhelpful replies", "fallback"),
        (
            "Don't know",
            _pct(r.dont_know_rate),
            f"{r.dont_know:,} of {r.retrieval_turns:,} searches",
            "dont_know",
        ),
        (
            "Turns to resolution",
            _num(r.turns_to_resolution),
            f"{_num(r.turns_to_handoff)} to a handoff",
            "turns",
        ),
    ]
    cells = "".join(
        f'<div class="tile" data-kpi="{key}"><div class="tile-name">{html.escape(name)}</div>'
        f'<div class="tile-value">{html.escape(value)}</div>'
        f'<div class="sub">{html.escape(sub)}</div></div>'
        for name, value, sub, key in tiles
    )
    notes = "".join(_note(n) for n in r.notes)
    since = f" · since {r.since:%Y-%m-%d}" if r.since is not None else ""
    return (
        f'<header class="card"><h1>{html.escape(title)} <span class="sub">insights · '
        f"{html.escape(period)}{html.escape(since)}</span></h1>\n"
        f'<div class="tiles">{cells}</div>{notes}</header>'
    )


def _hbars(label: str, items: Sequence[tuple[str, float]], colour: str, unit: str = "") -> str:
    """A horizontal bar chart, one bar per item, value written at the bar's end."""
    if not items:
        return ""
    label_px = 6.4 * max(len(name) for name, _ in items) + 12
    bar_h, gap, width = 18.0, 6.0, 360.0
    top, left = 8.0, label_px
    largest = max(value for _, value in items) or 1.0
    parts = []
    for index, (name, value) in enumerate(items):
        y = top + index * (bar_h + gap)
        length = max(1.0, value / largest * width) if value else 0.0
        text = f"{value:,.0f}{unit}" if float(value).is_integer() else f"{value:,.1f}{unit}"
        parts.append(_svg_text(left - 6, y + bar_h - 5, name, "axis-label end"))
        parts.append(
            f'<rect class="bar" x="{left:.1f}" y="{y:.1f}" width="{length:.1f}" '
            f'height="{bar_h}" rx="2" fill="{colour}" data-label="{html.escape(name)}" '
            f'data-value="{value}"><title>{html.escape(name)}: {html.escape(text)}</title></rect>'
        )
        parts.append(_svg_text(left + length + 5, y + bar_h - 5, text, "tick"))
    height = top + len(items) * (bar_h + gap) + 4
    return _svg(left + width + 70, height, label, parts)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _trends(r: InsightsReport) -> str:
    weeks = r.weeks
    if not weeks:
        return _card("Trends", _note("No turns in this period."), "trends")
    frame = _Frame(56, 34, max(420.0, 60.0 * len(weeks)), 200, max(1, len(weeks) - 1), 1.0)
    step = max(1, len(weeks) // 8)
    x_ticks = [(float(i), w.week[5:]) for i, w in enumerate(weeks) if i % step == 0]
    parts = _axes(frame, x_ticks, _unit_ticks(0.2), "ISO week", "rate")
    series = [
        ("containment", _GREEN, [w.containment_rate for w in weeks]),
        (
            "handoff",
            _RED,
            [(w.handed_off / w.conversations) if w.conversations else None for w in weeks],
        ),
        ("out of scope", _AMBER, [w.out_of_scope_rate for w in weeks]),
        (
            "don't know",
            _PURPLE,
            [(w.dont_know / w.retrieval_turns) if w.retrieval_turns else None for w in weeks],
        ),
    ]
    for name, colour, values in series:
        xy = [
            (frame.x(i if len(weeks) > 1 else 0), frame.y(v))
            for i, v in enumerate(values)
            if v is not None
        ]
        if xy:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(
                f'<polyline class="line trend" data-series="{name}" points="{points}" '
                f'stroke="{colour}"/>'
            )
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in xy]
    parts += _legend(frame.left + 8, 18, [(c, n) for n, c, _ in series])
    chart = _svg(frame.left + frame.width + 30, frame.top + frame.height + 50, "Trends", parts)
    volume = _hbars(
        "Conversations per week", [(w.week, float(w.conversations)) for w in weeks], _BLUE
    )
    return _card(
        "Trends by week",
        '<div class="figures">'
        + _figure(chart, "Containment, handoff, out-of-scope and don't-know rates per week")
        + _figure(volume, "Conversations per week (by first turn)")
        + "</div>"
        + _intent_trend_table(r),
        "trends",
    )


def _intent_trend_table(r: InsightsReport) -> str:
    top = list(r.intents)[:8]
    if not top:
        return ""
    head = "".join(f'<th class="num">{html.escape(w.week[5:])}</th>' for w in r.weeks)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f'<td class="num">{w.intents.get(name, 0)}</td>' for w in r.weeks)
        + "</tr>"
        for name in top
    )
    return (
        '<h3>Top intents per week</h3><table class="trend"><thead><tr><th>intent</th>'
        f"{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _intents(r: InsightsReport) -> str:
    items = [(k, float(v)) for k, v in list(r.intents.items())[:TOP_INTENTS]]
    if r.out_of_scope:
        items.append(("(out of scope)", float(r.out_of_scope)))
    if not items:
        return _card("Intents", _note("No intents recognised."), "intents")
    routes = _hbars("Routes", [(k, float(v)) for k, v in r.routes.items()], _PURPLE)
    more = len(r.intents) - TOP_INTENTS
    caption = "Customer turns per intent" + (
        f" (top {TOP_INTENTS}; {more} more)" if more > 0 else ""
    )
    return _card(
        "Intents and routes",
        '<div class="figures">'
        + _figure(_hbars("Intents", items, _BLUE), caption)
        + _figure(routes, "Replies per route")
        + "</div>",
        "intents",
    )


def _handoffs(r: InsightsReport) -> str:
    if not r.handoffs:
        return _card("Handoffs", _note("No conversation went to a person."), "handoffs")
    reasons = _hbars(
        "Handoff triggers", [(k, float(v)) for k, v in r.handoff_reasons.items()], _RED
    )
    queues = _hbars("Queues", [(k, float(v)) for k, v in r.handoff_queues.items()], _AMBER)
    return _card(
        "Handoffs",
        '<div class="figures">'
        + _figure(reasons, "Handoffs by trigger")
        + _figure(queues, "Handoffs by queue")
        + "</div>",
        "handoffs",
    )


def _flows(r: InsightsReport) -> str:
    if not r.flows:
        return _card("Flows", _note("No flow was started."), "flows")
    rows = "".join(
        f'<tr data-flow="{html.escape(f.flow)}"><th>{html.escape(f.flow)}</th>'
        f'<td class="num">{f.started}</td><td class="num">{f.completed}</td>'
        f'<td class="num">{_pct(f.completion_rate)}</td><td class="num">{f.cancelled}</td>'
        f'<td class="num">{f.handed_off}</td><td class="num">{f.abandoned}</td>'
        f"<td>{html.escape(', '.join(f'{k} {v}' for k, v in f.drop_off.items()) or '—')}</td>"
        "</tr>"
        for f in r.flows
    )
    table = (
        '<table class="flows"><thead><tr><th>flow</th><th class="num">started</th>'
        '<th class="num">completed</th><th class="num">rate</th><th class="num">cancelled</th>'
        '<th class="num">handed off</th><th class="num">left</th><th>stopped at</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
    drops = [(f"{f.flow} · {step}", float(n)) for f in r.flows for step, n in f.drop_off.items()]
    chart = _figure(
        _hbars("Drop-off", drops, _AMBER), "Unfinished flows by the step they stopped at"
    )
    return _card("Flows", table + (f'<div class="figures">{chart}</div>' if drops else ""), "flows")


def _guardrails(r: InsightsReport) -> str:
    if not r.guardrails:
        return _card(
            "Guardrails", _note("No guardrail blocked or rewrote a message."), "guardrails"
        )
    items = [(f"{g.stage} · {g.guardrail} · {g.action}", float(g.count)) for g in r.guardrails]
    return _card(
        "Guardrails",
        '<div class="figures">'
        + _figure(_hbars("Guardrail verdicts", items, _RED), "Blocks and rewrites by guardrail")
        + "</div>",
        "guardrails",
    )


def _latency(r: InsightsReport) -> str:
    if not r.latency:
        return _card("Latency", _note("No turn timings recorded."), "latency")
    rows = "".join(
        f"<tr><th>{html.escape(s.stage)}</th><td class='num'>{s.turns:,}</td>"
        f"<td class='num'>{s.mean:.1f}</td><td class='num'>{s.p50:.1f}</td>"
        f"<td class='num'>{s.p90:.1f}</td><td class='num'>{s.p95:.1f}</td>"
        f"<td class='num'>{s.p99:.1f}</td><td class='num'>{s.max:.1f}</td></tr>"
        for s in r.latency
    )
    table = (
        '<table class="latency"><thead><tr><th>stage</th><th class="num">turns</th>'
        '<th class="num">mean</th><th class="num">p50</th><th class="num">p90</th>'
        '<th class="num">p95</th><th class="num">p99</th><th class="num">max</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
    p50 = _hbars("Latency p50", [(s.stage, s.p50) for s in r.latency], _BLUE, " ms")
    p95 = _hbars("Latency p95", [(s.stage, s.p95) for s in r.latency], _AMBER, " ms")
    return _card(
        "Latency per stage (ms)",
        '<div class="figures">'
        + _figure(p50, "p50 per stage")
        + _figure(p95, "p95 per stage")
        + f"</div>{table}",
        "latency",
    )


_EXTRA_CSS = """
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
  gap: 10px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
  background: var(--soft); }
.tile-name { color: var(--muted); font-size: 12px; }
.tile-value { font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; }
table.trend, table.flows, table.latency { margin-top: 10px; font-size: 13px; }
"""
