"""A single self-contained HTML page for an eval report (the JSON built by the eval runner).

``render_html(report)`` returns one document with no external assets and no network use:
inline CSS, a few lines of vanilla JavaScript to filter the case list, and plots drawn here as
inline SVG (no plotting library). The page has, in order:

- a header: project, cases passed/total, overall verdict, seed, start time, duration, machine;
- metrics overall and per suite, and every threshold with its pass/fail mark;
- intent plots: confusion matrix, confidence histogram (correct vs wrong) and a threshold
  sweep (in-scope accuracy and out-of-scope recall when low-confidence predictions become
  out of scope);
- a per-case drill-down: one expandable row per case with its transcript and checks.

All report text goes through :func:`html.escape`. Missing or empty sections render as a short
note instead of failing, so a partial report still gives a readable page.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["render_html"]

NONE_LABEL = "(none)"
"""The intent label of an out-of-scope turn."""
SWEEP_STEP = 0.05
HISTOGRAM_BINS = 20
OVERALL = "overall"

_GREEN = "#1a7f37"
_RED = "#cf222e"
_BLUE = "#0969da"
_GREY = "#57606a"


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    project = _text(report.get("project")) or "cxbot"
    sections = [
        _header(report),
        _metrics_section(report),
        _plots_section(report),
        _cases_section(report),
        _footer(report),
    ]
    return _page(f"Eval report: {project}", "\n".join(sections))


# --- small helpers -----------------------------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _text(value: object) -> str:
    """Plain text of a report value (strings as they are, other values as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, bool | int):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _esc(value: object) -> str:
    return html.escape(_text(value))


def _pct(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"{number * 100:.1f}%"


def _duration(value: object) -> str:
    seconds = _number(value)
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s"


def _badge(passed: bool, yes: str = "PASS", no: str = "FAIL") -> str:
    return f'<span class="badge {"pass" if passed else "fail"}">{yes if passed else no}</span>'


def _mark(passed: object) -> str:
    if passed is True:
        return '<span class="mark pass" title="passed">✓</span>'
    return '<span class="mark fail" title="failed">✗</span>'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _suite_names(report: Mapping[str, Any]) -> list[str]:
    names = [str(name) for name in _mapping(report.get("by_suite"))]
    for case in _items(report.get("cases")):
        suite = _text(_mapping(case).get("suite"))
        if suite and suite not in names:
            names.append(suite)
    return names


# --- page and header ---------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def _header(report: Mapping[str, Any]) -> str:
    cases = [_mapping(c) for c in _items(report.get("cases"))]
    total = report.get("cases_total", len(cases))
    passed = report.get("cases_passed", sum(c.get("passed") is True for c in cases))
    verdict = report.get("passed")
    badge = (
        _badge(verdict)
        if isinstance(verdict, bool)
        else '<span class="badge unknown">NO VERDICT</span>'
    )
    facts = [
        ("Cases", f"{_text(passed)} / {_text(total)} passed"),
        ("Seed", _text(report.get("seed")) or "—"),
        ("Started", _text(report.get("started_at")) or "—"),
        ("Duration", _duration(report.get("duration_s"))),
        ("Machine", _machine(report.get("machine"))),
    ]
    rows = "".join(f"<div><dt>{k}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts)
    return (
        '<header class="card">\n'
        f'<h1>{_esc(report.get("project") or "cxbot")} <span class="sub">eval report</span> '
        f"{badge}</h1>\n"
        f'<dl class="facts">{rows}</dl>\n</header>'
    )


def _machine(value: object) -> str:
    machine = dict(_mapping(value))
    if not machine:
        return "—"
    parts = []
    if "python" in machine:
        parts.append(f"Python {_text(machine.pop('python'))}")
    if "platform" in machine:
        parts.append(_text(machine.pop("platform")))
    if "cpus" in machine:
        parts.append(f"{_text(machine.pop('cpus'))} CPUs")
    if "memory_gb" in machine:
        memory = _number(machine.pop("memory_gb"))
        parts.append(f"{memory:g} GB RAM" if memory is not None else "? GB RAM")
    parts.extend(f"{key}: {_text(val)}" for key, val in machine.items())
    return " · ".join(parts)


def _footer(report: Mapping[str, Any]) -> str:
    finished = _text(report.get("finished_at")) or "—"
    version = _text(report.get("schema_version")) or "?"
    return (
        f"<footer>Report schema {html.escape(version)} · finished {html.escape(finished)} · "
        "rendered by cxbot.evals.html</footer>"
    )


# --- metrics and thresholds --------------------------------------------------------------------


def _metrics_section(report: Mapping[str, Any]) -> str:
    return (
        '<section class="card"><h2>Metrics</h2>\n'
        f"{_metrics_table(report)}\n<h3>Thresholds</h3>\n{_thresholds_table(report)}</section>"
    )


def _metrics_table(report: Mapping[str, Any]) -> str:
    by_suite = _mapping(report.get("by_suite"))
    columns: list[tuple[str, Mapping[str, Any], str]] = [
        (
            OVERALL,
            _mapping(report.get("metrics")),
            f"{_text(report.get('cases_passed'))}/{_text(report.get('cases_total'))}",
        )
    ]
    for name in _suite_names(report):
        suite = _mapping(by_suite.get(name))
        counts = f"{_text(suite.get('cases_passed'))}/{_text(suite.get('cases_total'))}"
        columns.append((name, _mapping(suite.get("metrics")), counts))
    names: list[str] = []
    for _, metrics, _ in columns:
        names.extend(str(m) for m in metrics if str(m) not in names)
    if not names:
        return _note("No metrics in this report.")
    thresholds = _thresholds_by_cell(report)
    head = "".join(
        f'<th class="num">{html.escape(name)}<br><span class="sub">{html.escape(counts)} cases'
        "</span></th>"
        for name, _, counts in columns
    )
    body = []
    for metric in names:
        cells = "".join(
            _metric_cell(metrics.get(metric), thresholds.get((column, metric)))
            for column, metrics, _ in columns
        )
        body.append(f"<tr><th>{html.escape(metric)}</th>{cells}</tr>")
    return (
        f'<table class="metrics"><thead><tr><th>metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _thresholds_by_cell(report: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in _items(report.get("thresholds")):
        threshold = _mapping(item)
        suite = _text(threshold.get("suite")) or OVERALL
        cells[(suite, _text(threshold.get("metric")))] = threshold
    return cells


def _metric_cell(value: object, threshold: Mapping[str, Any] | None) -> str:
    if value is None and threshold is None:
        return '<td class="num empty">·</td>'
    if threshold is None:
        return f'<td class="num">{_pct(value)}</td>'
    passed = threshold.get("passed") is True
    return (
        f'<td class="num {"ok" if passed else "bad"}">{_pct(value)} {_mark(passed)}'
        f'<br><span class="sub">min {_pct(threshold.get("min"))}</span></td>'
    )


def _thresholds_table(report: Mapping[str, Any]) -> str:
    thresholds = [_mapping(t) for t in _items(report.get("thresholds"))]
    if not thresholds:
        return _note("No thresholds are set.")
    rows = "".join(
        f'<tr class="{"ok" if t.get("passed") is True else "bad"}">'
        f"<td>{_mark(t.get('passed'))}</td><td>{_esc(t.get('suite') or OVERALL)}</td>"
        f"<td>{_esc(t.get('metric'))}</td><td class='num'>{_pct(t.get('value'))}</td>"
        f"<td class='num'>≥ {_pct(t.get('min'))}</td></tr>"
        for t in thresholds
    )
    return (
        '<table class="thresholds"><thead><tr><th></th><th>suite</th><th>metric</th>'
        f'<th class="num">value</th><th class="num">minimum</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


# --- intent plots ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prediction:
    gold: str
    predicted: str
    confidence: float | None

    @property
    def correct(self) -> bool:
        return self.gold == self.predicted


def _predictions(report: Mapping[str, Any]) -> list[_Prediction]:
    predictions = []
    for item in _items(_mapping(report.get("intents")).get("predictions")):
        record = _mapping(item)
        gold, predicted = record.get("gold"), record.get("predicted")
        predictions.append(
            _Prediction(
                gold=_text(gold) or NONE_LABEL,
                predicted=_text(predicted) or NONE_LABEL,
                confidence=_number(record.get("confidence")),
            )
        )
    return predictions


def _plots_section(report: Mapping[str, Any]) -> str:
    predictions = _predictions(report)
    if not predictions:
        body = _note("No intent predictions in this report: no intent plots.")
    else:
        labels = _labels(report, predictions)
        figures = [
            (
                "Confusion matrix (rows: gold, columns: predicted)",
                _confusion_svg(labels, predictions),
            ),
            ("Intent confidence: correct vs wrong predictions", _histogram_svg(predictions)),
            ("Threshold sweep: confidence below threshold → (none)", _sweep_svg(predictions)),
        ]
        body = '<div class="figures">' + "".join(
            f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, svg in figures
        )
        body += "</div>" + _note(
            f"{len(predictions)} turns with an intent expectation; "
            f"{sum(p.correct for p in predictions)} predicted correctly."
        )
    return f'<section class="card"><h2>Intents</h2>\n{body}</section>'


def _labels(report: Mapping[str, Any], predictions: Sequence[_Prediction]) -> list[str]:
    """Report labels plus any only seen in predictions; out of scope last."""
    labels = [_text(x) for x in _items(_mapping(report.get("intents")).get("labels"))]
    for p in predictions:
        labels.extend(x for x in (p.gold, p.predicted) if x not in labels)
    return [x for x in labels if x != NONE_LABEL] + [NONE_LABEL] * (NONE_LABEL in labels)


def _svg(width: float, height: float, label: str, content: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{html.escape(label)}">'
        f"<title>{html.escape(label)}</title>{''.join(content)}</svg>"
    )


def _svg_text(x: float, y: float, text: str, cls: str = "", extra: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{klass}{extra}>{html.escape(text)}</text>'


def _confusion_svg(labels: Sequence[str], predictions: Sequence[_Prediction]) -> str:
    counts = {(g, p): 0 for g in labels for p in labels}
    for prediction in predictions:
        counts[(prediction.gold, prediction.predicted)] += 1
    row_totals = {g: sum(counts[(g, p)] for p in labels) for g in labels}
    size = 36.0 if len(labels) <= 12 else max(18.0, 432.0 / len(labels))
    label_px = 6.2 * max(len(x) for x in labels)
    left, top = label_px + 34, 12.0
    bottom = label_px * 0.72 + 40
    width, height = left + size * len(labels) + 12, top + size * len(labels) + bottom
    parts = []
    for row, gold in enumerate(labels):
        y = top + row * size
        parts.append(_svg_text(left - 6, y + size / 2 + 4, gold, "axis-label end"))
        for col, predicted in enumerate(labels):
            x, count = left + col * size, counts[(gold, predicted)]
            share = count / row_totals[gold] if row_totals[gold] else 0.0
            parts.append(_confusion_cell(x, y, size, gold, predicted, count, share))
    for col, predicted in enumerate(labels):
        x, y = left + col * size + size / 2 + 4, top + size * len(labels) + 8
        parts.append(
            _svg_text(
                x, y, predicted, "axis-label end", f' transform="rotate(-45 {x:.1f} {y:.1f})"'
            )
        )
    parts.append(_svg_text(left + size * len(labels) / 2, height - 6, "predicted", "axis-title"))
    middle = top + size * len(labels) / 2
    parts.append(
        _svg_text(14, middle, "gold", "axis-title", f' transform="rotate(-90 14 {middle:.1f})"')
    )
    return _svg(width, height, "Intent confusion matrix", parts)


def _confusion_cell(
    x: float, y: float, size: float, gold: str, predicted: str, count: int, share: float
) -> str:
    if count == 0:
        fill, ink = "#f6f8fa", ""
    else:
        rgb = "9,105,218" if gold == predicted else "207,34,46"
        alpha = 0.15 + 0.8 * share
        fill, ink = f"rgba({rgb},{alpha:.2f})", "light" if alpha > 0.55 else "dark"
    tip = f"gold {gold} → predicted {predicted}: {count}"
    cell = (
        f'<g><title>{html.escape(tip)}</title><rect class="cm-cell" x="{x:.1f}" y="{y:.1f}" '
        f'width="{size - 2:.1f}" height="{size - 2:.1f}" rx="3" fill="{fill}" '
        f'data-gold="{html.escape(gold)}" data-predicted="{html.escape(predicted)}" '
        f'data-count="{count}"/>'
    )
    if count:
        cell += _svg_text(x + (size - 2) / 2, y + size / 2 + 3, str(count), f"cm-count {ink}")
    return cell + "</g>"


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart: a pixel box and the data range [0, x_max] by [0, y_max]."""

    left: float
    top: float
    width: float
    height: float
    x_max: float
    y_max: float

    def x(self, value: float) -> float:
        return self.left + value / self.x_max * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - value / self.y_max * self.height


def _axes(
    frame: _Frame,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_title: str,
    y_title: str,
) -> list[str]:
    bottom, right = frame.top + frame.height, frame.left + frame.width
    parts = []
    for value, label in y_ticks:
        y = frame.y(value)
        parts.append(
            f'<line class="grid" x1="{frame.left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(_svg_text(frame.left - 6, y + 4, label, "tick end"))
    for value, label in x_ticks:
        x = frame.x(value)
        parts.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}"/>'
        )
        parts.append(_svg_text(x, bottom + 18, label, "tick middle"))
    parts.append(f'<line class="axis" x1="{frame.left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    parts.append(
        f'<line class="axis" x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" y2="{bottom}"/>'
    )
    parts.append(_svg_text(frame.left + frame.width / 2, bottom + 38, x_title, "axis-title"))
    middle = frame.top + frame.height / 2
    parts.append(
        _svg_text(16, middle, y_title, "axis-title", f' transform="rotate(-90 16 {middle:.1f})"')
    )
    return parts


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]]) -> list[str]:
    """A one-line legend: a colour swatch and a label per entry, left to right."""
    parts = []
    for colour, label in entries:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9}" width="12" height="12" rx="2" fill="{colour}"/>'
        )
        parts.append(_svg_text(x + 18, y + 1, label, "legend"))
        x += 40 + 6.5 * len(label)
    return parts


def _unit_ticks(step: float) -> list[tuple[float, str]]:
    count = round(1 / step)
    return [(i * step, f"{i * step:.1f}") for i in range(count + 1)]


def _count_ticks(largest: int) -> list[tuple[float, str]]:
    step = 1
    while math.ceil(largest / step) > 5:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    top = max(1, math.ceil(largest / step)) * step
    return [(float(v), str(v)) for v in range(0, top + 1, step)]


def _histogram_svg(predictions: Sequence[_Prediction]) -> str:
    bins = {True: [0] * HISTOGRAM_BINS, False: [0] * HISTOGRAM_BINS}
    for p in predictions:
        if p.confidence is not None:
            index = min(HISTOGRAM_BINS - 1, max(0, int(p.confidence * HISTOGRAM_BINS)))
            bins[p.correct][index] += 1
    y_ticks = _count_ticks(max(max(bins[True]), max(bins[False])))
    frame = _Frame(56, 34, 300, 200, 1.0, y_ticks[-1][0])
    parts = _axes(frame, _unit_ticks(0.1), y_ticks, "intent confidence", "turns")
    bin_px = frame.width / HISTOGRAM_BINS
    for correct, colour, offset in ((True, _GREEN, 1.0), (False, _RED, bin_px / 2)):
        for index, count in enumerate(bins[correct]):
            if count:
                x, y = frame.left + index * bin_px + offset, frame.y(count)
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bin_px / 2 - 1:.1f}" '
                    f'height="{frame.y(0) - y:.1f}" fill="{colour}"><title>'
                    f"{'correct' if correct else 'wrong'}, confidence "
                    f"{index / HISTOGRAM_BINS:.2f} to {(index + 1) / HISTOGRAM_BINS:.2f}: {count}"
                    "</title></rect>"
                )
    parts += _legend(frame.left + 12, 18, [(_GREEN, "correct"), (_RED, "wrong")])
    return _svg(frame.left + frame.width + 20, frame.top + frame.height + 50, "Confidence", parts)


def _sweep(predictions: Sequence[_Prediction]) -> list[tuple[float, float | None, float | None]]:
    """Per threshold: accuracy of in-scope turns and recall of out-of-scope turns.

    A prediction becomes out of scope when its confidence is below the threshold; a
    prediction without a confidence keeps its label.
    """
    in_scope = [p for p in predictions if p.gold != NONE_LABEL]
    out_of_scope = [p for p in predictions if p.gold == NONE_LABEL]
    points = []
    for step in range(round(1 / SWEEP_STEP) + 1):
        threshold = round(step * SWEEP_STEP, 2)

        def label(p: _Prediction, t: float = threshold) -> str:
            low = p.confidence is not None and p.confidence < t
            return NONE_LABEL if low else p.predicted

        accuracy = sum(label(p) == p.gold for p in in_scope) / len(in_scope) if in_scope else None
        recall = (
            sum(label(p) == NONE_LABEL for p in out_of_scope) / len(out_of_scope)
            if out_of_scope
            else None
        )
        points.append((threshold, accuracy, recall))
    return points


def _sweep_svg(predictions: Sequence[_Prediction]) -> str:
    points = _sweep(predictions)
    frame = _Frame(56, 34, 300, 200, 1.0, 1.0)
    parts = _axes(frame, _unit_ticks(0.1), _unit_ticks(0.2), "confidence threshold", "rate")
    series = [
        (1, _BLUE, "in-scope accuracy", "sweep-accuracy"),
        (2, "#bf8700", "out-of-scope recall", "sweep-recall"),
    ]
    legend = []
    for index, colour, name, cls in series:
        xy = [(frame.x(p[0]), frame.y(v)) for p in points if (v := p[index]) is not None]
        if not xy:
            legend.append((_GREY, f"{name}: no turns"))
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        parts.append(f'<polyline class="line {cls}" points="{path}" stroke="{colour}"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in xy]
        legend.append((colour, name))
    parts += _legend(frame.left + 12, 18, legend)
    return _svg(frame.left + frame.width + 20, frame.top + frame.height + 50, "Sweep", parts)


# --- cases -------------------------------------------------------------------------------------


def _cases_section(report: Mapping[str, Any]) -> str:
    cases = [_mapping(c) for c in _items(report.get("cases"))]
    if not cases:
        return (
            '<section class="card"><h2>Cases</h2>'
            + _note("No cases in this report.")
            + "</section>"
        )
    failed = sum(c.get("passed") is not True for c in cases)
    controls = (
        '<div class="controls"><label><input type="checkbox" id="only-failed"> failed only'
        '</label><input type="search" id="case-filter" placeholder="filter cases…">'
        '<button type="button" id="expand-all">expand all</button>'
        '<button type="button" id="collapse-all">collapse all</button></div>'
    )
    head = (
        '<div class="case-row case-head"><span></span><span>suite</span><span>id</span>'
        "<span>title</span><span>turns</span><span>failed checks</span></div>"
    )
    rows = "\n".join(_case(case) for case in cases)
    return (
        f'<section class="card"><h2>Cases <span class="sub">{len(cases) - failed} passed, '
        f"{failed} failed</span></h2>\n{controls}\n"
        f'<div class="cases">{head}\n{rows}</div></section>'
    )


def _failed_checks(case: Mapping[str, Any]) -> list[str]:
    failed = []
    if case.get("error"):
        failed.append("error")
    for number, turn in enumerate(_items(case.get("turns")), start=1):
        for check in _items(_mapping(turn).get("checks")):
            if _mapping(check).get("passed") is not True:
                failed.append(f"t{number} {_text(_mapping(check).get('evaluator'))}")
    return failed


def _case(case: Mapping[str, Any]) -> str:
    passed = case.get("passed") is True
    turns = _items(case.get("turns"))
    chips = "".join(f'<span class="chip">{html.escape(x)}</span>' for x in _failed_checks(case))
    tags = "".join(f'<span class="tag">{_esc(t)}</span>' for t in _items(case.get("tags")))
    summary = (
        f'<summary class="case-row">{_badge(passed, "pass", "fail")}'
        f"<span>{_esc(case.get('suite'))}</span><span><code>{_esc(case.get('id'))}</code></span>"
        f"<span>{_esc(case.get('title'))}{tags}</span><span>{len(turns)}</span>"
        f"<span>{chips}</span></summary>"
    )
    error = case.get("error")
    body = f'<pre class="error">{_esc(error)}</pre>' if error else ""
    body += "".join(_turn(number, _mapping(t)) for number, t in enumerate(turns, start=1))
    if not turns:
        body += _note("No turns recorded.")
    return (
        f'<details class="case {"passed" if passed else "failed"}" '
        f'data-passed="{"true" if passed else "false"}" id="case-{_esc(case.get("key"))}">'
        f'{summary}<div class="transcript">{body}</div></details>'
    )


def _turn(number: int, turn: Mapping[str, Any]) -> str:
    confidence = _number(turn.get("confidence"))
    facts = [
        f"route <code>{_esc(turn.get('route')) or '—'}</code>",
        f"intent <code>{_esc(turn.get('intent')) or NONE_LABEL}</code>",
        f"confidence {'—' if confidence is None else f'{confidence:.3f}'}",
    ]
    if turn.get("handoff") is True:
        facts.append('<span class="chip">handoff</span>')
    citations = _items(turn.get("citations"))
    cited = ", ".join(f"<code>{_esc(c)}</code>" for c in citations) if citations else "none"
    return (
        f'<div class="turn"><div class="turn-head"><b>Turn {number}</b> · {" · ".join(facts)}'
        f'</div><div class="msg user"><span class="who">user</span>'
        f'<div class="said">{_esc(turn.get("user"))}</div></div>'
        f'<div class="msg bot"><span class="who">bot</span>'
        f'<div class="said">{_esc(turn.get("reply"))}</div></div>'
        f'<div class="cites">citations: {cited}</div>{_checks(_items(turn.get("checks")))}</div>'
    )


def _checks(checks: Sequence[Any]) -> str:
    if not checks:
        return ""
    rows = []
    for item in checks:
        check = _mapping(item)
        ok = check.get("passed") is True
        rows.append(
            f'<tr class="{"ok" if ok else "bad"}"><td>{_mark(ok)}</td>'
            f"<td>{_esc(check.get('evaluator'))}</td><td>{_esc(check.get('expected'))}</td>"
            f"<td>{_esc(check.get('got'))}</td></tr>"
        )
    return (
        '<table class="checks"><thead><tr><th></th><th>check</th><th>expected</th><th>got</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --ink: #1f2328; --muted: #57606a; --line: #d0d7de;
  --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f4; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin-bottom: 16px; }
h1 { margin: 0 0 12px; font-size: 24px; display: flex; align-items: center; gap: 12px; }
h2 { margin: 0 0 12px; font-size: 18px; }
h3 { margin: 18px 0 8px; font-size: 15px; }
.sub { color: var(--muted); font-weight: normal; font-size: 12px; }
h1 .sub { font-size: 16px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff;
  font-size: 12px; font-weight: 700; letter-spacing: .04em; }
.badge.pass { background: var(--ok); } .badge.fail { background: var(--bad); }
.badge.unknown { background: var(--muted); }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, auto));
  gap: 8px 28px; margin: 0; }
.facts dt { color: var(--muted); font-size: 12px; } .facts dd { margin: 0; font-weight: 600; }
table { border-collapse: collapse; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); font-size: 12px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { background: #dafbe1; } td.bad, tr.bad td { background: #ffebe9; }
td.empty { color: #afb8c1; }
.mark { font-weight: 700; } .mark.pass { color: var(--ok); } .mark.fail { color: var(--bad); }
.note { color: var(--muted); font-style: italic; margin: 8px 0 0; }
.figures { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure svg { display: block; max-width: 100%; height: auto; }
figure { margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 12px; text-align: center; margin-top: 4px; }
svg text { font-family: inherit; fill: var(--ink); }
svg .axis-label { font-size: 11px; } svg .tick { font-size: 10px; fill: var(--muted); }
svg .axis-title { font-size: 12px; text-anchor: middle; fill: var(--muted); }
svg .legend { font-size: 11px; }
svg .end { text-anchor: end; } svg .middle { text-anchor: middle; }
svg .cm-count { font-size: 11px; font-weight: 700; text-anchor: middle; }
svg .cm-count.light { fill: #fff; }
svg .grid { stroke: #eaeef2; } svg .axis { stroke: var(--muted); }
svg .line { fill: none; stroke-width: 2; }
.controls { display: flex; gap: 12px; align-items: center; margin-bottom: 10px; }
.controls input[type=search] { padding: 4px 8px; border: 1px solid var(--line);
  border-radius: 6px; min-width: 240px; }
.controls button { padding: 4px 10px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--soft); cursor: pointer; }
.case-row { display: grid; grid-template-columns: 56px 110px 200px minmax(0, 1fr) 48px 240px;
  gap: 10px; align-items: center; padding: 6px 10px; }
.case-head { background: var(--soft); font-size: 12px; font-weight: 700;
  border-bottom: 1px solid var(--line); }
details.case { border-bottom: 1px solid var(--line); }
details.case.failed > summary { background: #fff5f5; }
summary.case-row { cursor: pointer; list-style: none; }
summary.case-row::-webkit-details-marker { display: none; }
summary.case-row:hover { background: var(--soft); }
details[open] > summary { border-bottom: 1px dashed var(--line); }
.chip, .tag { display: inline-block; padding: 0 6px; margin: 1px 4px 1px 0; border-radius: 10px;
  font-size: 11px; background: #ffebe9; color: var(--bad); border: 1px solid #ffcecb; }
.tag { background: #ddf4ff; color: #0550ae; border-color: #b6e3ff; margin-left: 6px; }
.transcript { padding: 8px 12px 14px 66px; background: #fbfcfd; }
.turn { margin: 8px 0 14px; }
.turn-head { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.msg { display: flex; gap: 10px; margin: 4px 0; }
.who { flex: 0 0 36px; font-size: 11px; color: var(--muted); text-transform: uppercase;
  padding-top: 6px; }
.said { white-space: pre-wrap; padding: 6px 10px; border-radius: 8px; max-width: 900px; }
.user .said { background: #ddf4ff; } .bot .said { background: #f0f0f3; }
.cites { font-size: 12px; color: var(--muted); margin: 4px 0 6px 46px; }
table.checks { margin-left: 46px; font-size: 12px; }
table.checks td { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
pre.error { background: #ffebe9; color: var(--bad); padding: 8px; border-radius: 6px;
  white-space: pre-wrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px; }
"""

_JS = """
(function () {
  var cases = Array.prototype.slice.call(document.querySelectorAll("details.case"));
  var onlyFailed = document.getElementById("only-failed");
  var query = document.getElementById("case-filter");
  if (!onlyFailed || !query) { return; }
  function apply() {
    var q = query.value.toLowerCase();
    cases.forEach(function (c) {
      var hidden = (onlyFailed.checked && c.dataset.passed === "true") ||
        (q !== "" && c.textContent.toLowerCase().indexOf(q) < 0);
      c.hidden = hidden;
    });
  }
  function openAll(open) { cases.forEach(function (c) { if (!c.hidden) { c.open = open; } }); }
  onlyFailed.addEventListener("change", apply);
  query.addEventListener("input", apply);
  document.getElementById("expand-all").onclick = function () { openAll(true); };
  document.getElementById("collapse-all").onclick = function () { openAll(false); };
})();
"""
