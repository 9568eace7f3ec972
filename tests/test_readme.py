"""The README's Python example runs as written, on a copy of the sample project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_has_one_short_example() -> None:
    blocks = python_blocks()
    assert len(blocks) == 1
    assert len([line for line in blocks[0].splitlines() if line.strip()]) <= 10


def test_readme_example_runs(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    exec(compile(python_blocks()[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("rag ")
    assert "disputes/disputing-a-card-payment.md" in out
    assert "Handoff to customer-care" in out
