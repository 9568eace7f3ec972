"""Reports of an eval run: JSON (stable), Markdown (for pull requests), terminal tables,
and the comparison with a baseline report (metric deltas, case flips)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Comparison",
    "compare",
    "load_report",
    "print_report",
    "to_json",
    "to_markdown",
]


def to_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("baseline report not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"baseline is not JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, dict) or "cases" not in data or "metrics" not in data:
        raise ConfigError("not a cxbot eval report (no 'cases'/'metrics')", file=path)
    return data


@dataclass(frozen=True, slots=True)
class Comparison:
    """How a run differs from its baseline."""

    deltas: dict[str, tuple[float | None, float | None]]
    """metric → (baseline, now), overall metrics."""
    regressions: list[str]
    """Case keys that passed in the baseline and fail now."""
    fixes: list[str]
    """Case keys that failed in the baseline and pass now."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "deltas": {k: {"baseline": a, "now": b} for k, (a, b) in self.deltas.items()},
            "regressions": self.regressions,
            "fixes": self.fixes,
        }


def compare(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> Comparison:
    old_metrics: Mapping[str, float] = baseline.get("metrics", {})
    new_metrics: Mapping[str, float] = report.get("metrics", {})
    deltas = {
        name: (old_metrics.get(name), new_metrics.get(name))
        for name in sorted(set(old_metrics) | set(new_metrics))
    }
    old_cases = {c["key"]: c["passed"] for c in baseline.get("cases", [])}
    new_cases = {c["key"]: c["passed"] for c in report.get("cases", [])}
    shared = [k for k in new_cases if k in old_cases]
    return Comparison(
        deltas=deltas,
        regressions=[k for k in shared if old_cases[k] and not new_cases[k]],
        fixes=[k for k in shared if not old_cases[k] and new_cases[k]],
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _failed_checks(case: Mapping[str, Any]) -> list[str]:
    lines = []
    if case.get("error"):
        lines.append(f"error: {case['error']}")
    for number, turn in enumerate(case.get("turns", []), start=1):
        for check in turn["checks"]:
            if not check["passed"]:
                lines.append(
                    f"turn {number} {check['evaluator']}: expected {check['expected']}, "
                    f"got {check['got']}"
                )
    return lines


def to_markdown(report: Mapping[str, Any], comparison: Comparison | None = None) -> str:
    mark = "✅" if report["passed"] else "❌"
    lines = [
        f"## {mark} cxbot eval — {report['project']}",
        "",
        f"{report['cases_passed']}/{report['cases_total']} cases passed.",
        "",
        "| suite | cases | passed | " + " | ".join(["pass rate"]) + " |",
        "|---|---:|---:|---:|",
    ]
    for name, suite in report["by_suite"].items():
        lines.append(
            f"| {name} | {suite['cases_total']} | {suite['cases_passed']} | "
            f"{_pct(suite['metrics'].get('pass_rate'))} |"
        )
    lines += [
        "",
        "| metric | value |" + (" baseline | Δ |" if comparison else ""),
        "|---|---:|" + ("---:|---:|" if comparison else ""),
    ]
    for name, value in report["metrics"].items():
        row = f"| {name} | {_pct(value)} |"
        if comparison is not None:
            old = comparison.deltas.get(name, (None, None))[0]
            delta = "—" if old is None else f"{(value - old) * 100:+.1f}"
            row += f" {_pct(old)} | {delta} |"
        lines.append(row)
    broken = [t for t in report["thresholds"] if not t["passed"]]
    if broken:
        lines += ["", "**Thresholds not met:**", ""]
        lines += [
            f"- {t['suite']}.{t['metric']}: {_pct(t['value'])} < {_pct(t['min'])}" for t in broken
        ]
    if comparison is not None and comparison.regressions:
        lines += ["", "**Cases that passed in the baseline and fail now:**", ""]
        lines += [f"- `{key}`" for key in comparison.regressions]
    failed = [c for c in report["cases"] if not c["passed"]]
    if failed:
        lines += ["", "<details><summary>Failed cases</summary>", ""]
        for case in failed:
            lines.append(f"- `{case['key']}`")
            lines += [f"  - {line}" for line in _failed_checks(case)]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def print_report(
    console: Console, report: Mapping[str, Any], comparison: Comparison | None = None
) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"cxbot eval — {report['project']}")
    for column in ("suite", "cases", "passed", "pass rate"):
        table.add_column(column, justify="left" if column == "suite" else "right")
    for name, suite in report["by_suite"].items():
        table.add_row(
            name,
            str(suite["cases_total"]),
            str(suite["cases_passed"]),
            _pct(suite["metrics"].get("pass_rate")),
        )
    console.print(table)
    metrics = Table(show_header=True)
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    if comparison is not None:
        metrics.add_column("baseline", justify="right")
        metrics.add_column("Δ points", justify="right")
    for name, value in report["metrics"].items():
        row = [name, _pct(value)]
        if comparison is not None:
            old = comparison.deltas.get(name, (None, None))[0]
            row += [_pct(old), "—" if old is None else f"{(value - old) * 100:+.1f}"]
        metrics.add_row(*row)
    console.print(metrics)
    for case in report["cases"]:
        if not case["passed"]:
            console.print(f"[red]✗ {escape(case['key'])}[/red]")
            for line in _failed_checks(case):
                console.print(f"    {escape(line)}")
    for threshold in report["thresholds"]:
        if not threshold["passed"]:
            console.print(
                f"[bold red]threshold not met: {threshold['suite']}.{threshold['metric']} "
                f"{_pct(threshold['value'])} < {_pct(threshold['min'])}[/bold red]"
            )
    if comparison is not None:
        for key in comparison.regressions:
            console.print(f"[bold red]regression: {escape(key)} passed in the baseline[/bold red]")
        for key in comparison.fixes:
            console.print(f"[green]fixed: {escape(key)}[/green]")
    console.print(
        f"{report['cases_passed']}/{report['cases_total']} cases passed in "
        f"{report['duration_s']:.1f}s"
    )
