"""Eval suite files: loading, shorthand, errors with lines, the published JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxbot.errors import ConfigError
from cxbot.evals.suite import load_suite, load_suites, suite_json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_published_schema_is_current() -> None:
    published = json.loads((ROOT / "evals/suite.schema.json").read_text())
    assert published == suite_json_schema(), "regenerate with `make schemas`"


def test_project_suites_load_with_unique_names() -> None:
    suites = load_suites(ROOT / "evals")
    names = [s.suite for s in suites]
    assert "demo" in names and len(names) == len(set(names))


def test_single_turn_shorthand(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\ncases:\n  - id: a\n    user: hello\n    expect: {route: flow, cites: x.md}\n"
    )
    [case] = load_suite(path).cases
    [turn] = case.dialogue
    assert turn.user == "hello"
    assert turn.expect is not None and turn.expect.cites == ("x.md",)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("suite: s\ncases:\n  - id: a\n    user: hi\n    expect: {rout: flow}\n", 5, "route"),
        ("suite: s\ncases:\n  - id: a\n    user: hi\n    expect: {route: chat}\n", 5, "route"),
        ("suite: s\ncases:\n  - id: a\n    user: hi\n  - id: a\n    user: ho\n", None, "repeat"),
        ("suite: s\ncases:\n  - id: a b\n    user: hi\n", 3, "id"),
        ("suite: s\ncases:\n  - id: a\n", 3, "either"),
    ],
)
def test_bad_suites_name_the_line(tmp_path: Path, body: str, line: int | None, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert info.value.file == str(path)
    if line is not None:
        assert info.value.line == line
    assert words in str(info.value)


def test_duplicate_suite_names_across_files(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text("suite: same\ncases:\n  - id: a\n    user: hi\n")
    with pytest.raises(ConfigError, match="also used"):
        load_suites(tmp_path)
