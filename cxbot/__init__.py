"""cxbot: customer-experience assistants and agent assist, offline by default.

``import cxbot`` is light: the heavy libraries (torch, chromadb, langchain) load on first
use of the class that needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxbot.errors import (
    BackendError,
    ConfigError,
    CxbotError,
    FlowSpecError,
    IngestError,
    InvalidMessage,
    InvalidSlot,
    PromptError,
    TurnError,
    UnknownConversation,
    UnknownCustomer,
)
from cxbot.stream import FinalReply, StreamEvent, TextDelta
from cxbot.types import Channel, Citation, Entity, NLUResult, RenderedReply, Reply, Route

if TYPE_CHECKING:
    from cxbot.assist import AgentAssist, AssistSuggestions
    from cxbot.assistant import Assistant
    from cxbot.handoff.summary import HandoffSummary
    from cxbot.rag.ingest import IngestReport

__version__ = "0.1.0"

__all__ = [
    "AgentAssist",
    "AssistSuggestions",
    "Assistant",
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

_LAZY = {
    "AgentAssist": "cxbot.assist",
    "AssistSuggestions": "cxbot.assist",
    "Assistant": "cxbot.assistant",
    "HandoffSummary": "cxbot.handoff.summary",
    "IngestReport": "cxbot.rag.ingest",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cxbot' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
