"""What :meth:`cxbot.Assistant.astream` yields: pieces of the reply text, then the reply.

A streamed turn is zero or more :class:`TextDelta` events followed by exactly one
:class:`FinalReply`. Match on ``kind`` (or the class)::

    async for event in bot.astream("conv-42", "How do I freeze my card?"):
        match event:
            case TextDelta(text=text):
                show(text)
            case FinalReply(reply=reply, replace_shown=True):
                replace_shown_text(reply.text)
            case FinalReply(reply=reply):
                done(reply)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cxbot.types import Reply

__all__ = ["FinalReply", "StreamEvent", "TextDelta"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply text, safe to show: the reply up to and including it passed the
    output guardrails. Pieces are whole sentences (or the whole reply)."""

    text: str
    kind: Literal["delta"] = "delta"


@dataclass(frozen=True, slots=True)
class FinalReply:
    """The end of a streamed turn: the reply :meth:`~cxbot.Assistant.respond` would have
    returned, already stored in the conversation.

    ``replace_shown`` is ``False`` when the deltas, concatenated, are exactly
    ``reply.text``. It is ``True`` when what the deltas showed must be replaced by
    ``reply.text``: an output guardrail blocked (or rewrote) the answer after part of it
    was shown, or the chat model failed mid-answer and the offline answer took its place.
    """

    reply: Reply
    replace_shown: bool = False
    kind: Literal["final"] = "final"


StreamEvent = TextDelta | FinalReply
"""One event of :meth:`cxbot.Assistant.astream`."""
