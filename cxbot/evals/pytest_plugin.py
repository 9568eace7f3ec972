"""pytest plugin: ``pytest --cxbot-evals evals/`` runs eval suites as test items.

One item per case (``<suite file>::<suite>/<case>``); a failing item shows, per turn,
what was expected and what the assistant did. The project is the folder holding
``cxbot.yaml`` above the suites (or ``--cxbot-project``). Registered through the
``pytest11`` entry point; inactive without the option.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cxbot.assistant import Assistant
    from cxbot.evals.suite import Case, Suite

__all__ = ["CaseFailed", "CaseItem", "SuiteFile"]

_ASSISTANT = pytest.StashKey["Assistant"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cxbot", "cxbot eval suites")
    group.addoption(
        "--cxbot-evals",
        action="append",
        default=[],
        metavar="PATH",
        help="Run the cxbot eval suites in PATH (file or folder) as tests.",
    )
    group.addoption(
        "--cxbot-project",
        default=None,
        metavar="DIR",
        help="Project folder (default: the folder with cxbot.yaml above the suites).",
    )


def _project_for(path: Path, option: str | None) -> Path:
    if option:
        return Path(option)
    for folder in [path, *path.parents]:
        if (folder / "cxbot.yaml").is_file():
            return folder
    raise pytest.UsageError(f"no cxbot.yaml above {path}; pass --cxbot-project")


class CaseFailed(Exception):
    """A case whose expectations did not all hold."""


class SuiteFile(pytest.File):
    def collect(self) -> Iterator[CaseItem]:
        from cxbot.evals.suite import load_suite

        suite = load_suite(self.path)
        for case in suite.cases:
            yield CaseItem.from_parent(
                self, name=f"{suite.suite}/{case.id}", suite=suite, case=case
            )


class CaseItem(pytest.Item):
    def __init__(self, *, suite: Suite, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case

    def _assistant(self) -> Assistant:
        config = self.config
        bot = config.stash.get(_ASSISTANT, None)
        if bot is None:
            from cxbot.assistant import Assistant

            project = _project_for(self.path.parent, config.getoption("cxbot_project"))
            bot = Assistant.from_dir(project)
            if bot.vector_store.count() == 0:
                bot.ingest()
            config.stash[_ASSISTANT] = bot
        return bot

    def runtest(self) -> None:
        import tempfile

        from cxbot.evals.runner import EvalRunner

        runner = EvalRunner(self._assistant(), workers=1)
        with tempfile.TemporaryDirectory(prefix="cxbot-case-") as scratch:
            result = runner.run_case(self.suite, self.case, Path(scratch))
        if result.error is not None:
            raise CaseFailed(f"the case raised {result.error}")
        lines = []
        for number, turn in enumerate(result.turns, start=1):
            for check in turn["checks"]:
                if not check["passed"]:
                    lines.append(
                        f"turn {number} ({turn['user']!r}) {check['evaluator']}:\n"
                        f"    expected: {check['expected']}\n"
                        f"    got:      {check['got']}"
                    )
        if lines:
            raise CaseFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.name}\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"cxbot eval {self.name}"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    paths: list[str] = config.getoption("cxbot_evals")
    for option in paths:
        root = Path(option).resolve()
        files = [root] if root.is_file() else sorted(root.rglob("*.yaml"))
        for path in files:
            suite_file = SuiteFile.from_parent(session, path=path)
            items.extend(suite_file.collect())
