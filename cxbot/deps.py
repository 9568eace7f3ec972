"""The dependencies of a turn, passed in explicitly: no singletons, nothing global."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxbot.config import CxbotConfig
from cxbot.conversation.store import ConversationStore
from cxbot.conversation.turns import TurnLog
from cxbot.embeddings import Embedder
from cxbot.flows.actions.calendar import CalendarBackend
from cxbot.profiles.store import ProfileStore
from cxbot.prompts import PromptLibrary

__all__ = ["TurnDeps"]


@dataclass(frozen=True, slots=True)
class TurnDeps:
    """Stores, models and the clock that every turn uses."""

    config: CxbotConfig
    embedder: Embedder
    conversations: ConversationStore
    profiles: ProfileStore
    calendar: CalendarBackend
    prompts: PromptLibrary
    clock: Callable[[], datetime]
    chat_model: Any = None
    turn_log: TurnLog | None = None
    """Where each committed turn's record goes (``None``: not recorded)."""
