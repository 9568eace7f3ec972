"""Scripted conversations (YAML): turns with optional expectations, for demos and evals."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cxbot._yaml import load_yaml_model
from cxbot.types import Reply

__all__ = [
    "ConversationScript",
    "Expect",
    "ScriptTurn",
    "ScriptedConversation",
    "check",
    "load_script",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Model):
    route: Literal["flow", "rag", "handoff", "blocked"] | None = Field(None, description="Route.")
    intent: str | None = Field(None, description="Intent the NLU must detect.")
    cites: str | None = Field(None, description="A citation source that must be present.")
    contains: tuple[str, ...] = Field((), description="Substrings the reply must contain.")
    handoff: bool | None = Field(None, description="Whether a handoff summary is produced.")


class ScriptTurn(_Model):
    user: str = Field(description="What the customer says.")
    expect: Expect | None = None


class ScriptedConversation(_Model):
    id: str = Field(description="Conversation id.")
    title: str = Field("", description="What the conversation shows.")
    customer_id: str | None = None
    turns: tuple[ScriptTurn, ...] = Field(min_length=1)


class ConversationScript(_Model):
    title: str = ""
    conversations: tuple[ScriptedConversation, ...] = Field(min_length=1)


def load_script(path: Path) -> ConversationScript:
    return load_yaml_model(path, ConversationScript)


def check(expect: Expect | None, reply: Reply) -> list[str]:
    """The expectations ``reply`` misses (empty = all met)."""
    if expect is None:
        return []
    missed = []
    if expect.route is not None and reply.route != expect.route:
        missed.append(f"route {reply.route!r} != {expect.route!r}")
    if expect.intent is not None and reply.intent != expect.intent:
        missed.append(f"intent {reply.intent!r} != {expect.intent!r}")
    if expect.cites is not None and expect.cites not in {c.source for c in reply.citations}:
        missed.append(f"no citation of {expect.cites}")
    missed += [f"reply lacks {s!r}" for s in expect.contains if s.lower() not in reply.text.lower()]
    if expect.handoff is not None and (reply.handoff is not None) != expect.handoff:
        missed.append("handoff summary " + ("missing" if expect.handoff else "unexpected"))
    return missed
