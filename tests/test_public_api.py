"""The public surface: a pinned ``__all__``, typed package, and a light ``import cxbot``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cxbot

PINNED = [
    "AgentAssist",
    "Assistant",
    "AssistSuggestions",
    "BackendError",
    "Channel",
    "Citation",
    "ConfigError",
    "CxbotError",
    "Entity",
    "FinalReply",
    "FlowSpecError",
    "HandoffSummary",
    "IngestError",
    "IngestReport",
    "InvalidMessage",
    "InvalidSlot",
    "NLUResult",
    "PromptError",
    "RenderedReply",
    "Reply",
    "Route",
    "StreamEvent",
    "TextDelta",
    "TurnError",
    "UnknownConversation",
    "UnknownCustomer",
    "__version__",
]


def test_all_is_pinned_and_resolvable() -> None:
    assert sorted(cxbot.__all__) == sorted(PINNED)
    for name in cxbot.__all__:
        assert getattr(cxbot, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        cxbot.Nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "Nope" in str(exc)
    else:
        raise AssertionError("cxbot.Nope resolved")


def test_package_is_typed() -> None:
    assert (Path(cxbot.__file__).parent / "py.typed").is_file()


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, json, cxbot; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'chromadb', 'langchain_core', 'langchain', 'langchain_openai', "
        "'sentence_transformers', 'transformers', 'openai', 'numpy', 'jinja2', 'rasa_sdk', "
        "'fastapi', 'starlette', 'uvicorn'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_errors_form_one_tree() -> None:
    for name in ("ConfigError", "BackendError", "TurnError", "IngestError"):
        assert issubclass(getattr(cxbot, name), cxbot.CxbotError)
    assert issubclass(cxbot.FlowSpecError, cxbot.ConfigError)
    assert issubclass(cxbot.InvalidMessage, cxbot.TurnError)
    assert issubclass(cxbot.UnknownCustomer, cxbot.TurnError)
    assert issubclass(cxbot.UnknownConversation, cxbot.TurnError)
