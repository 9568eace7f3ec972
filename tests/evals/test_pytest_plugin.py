"""The pytest plugin on a user's project: one item per case, expected vs got on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parent / "sample_project"
SCAFFOLD = Path(__file__).resolve().parents[2] / "cxbot/scaffold"


def test_suites_run_as_items(pytester: pytest.Pytester) -> None:
    project = pytester.path / "shop"
    shutil.copytree(SCAFFOLD, project)
    shutil.copytree(SAMPLE / "evals", project / "evals")
    result = pytester.runpytest_subprocess(
        "--cxbot-evals", str(project / "evals"), "-p", "no:cacheprovider", "-v"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*shop.yaml::shop/refunds PASSED*",
            "*shop.yaml::shop/book PASSED*",
            "*shop.yaml::shop/wrong-on-purpose FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*turn 1 ('hello') route:*", "*expected: rag*", "*got:      flow*"]
    )


def test_without_the_option_nothing_is_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
