"""Follow-up questions made searchable: "what about the fee for that?" → a standalone query.

Offline (the default) a rule decides whether the message may lean on the conversation — a
pronoun or demonstrative ("it", "that", "their"), an elliptic opener ("and…", "what
about…") or too few words of its own — and if so joins it to the customer's last
substantive earlier message, which names what "it" is. Pronouns also occur in questions
that stand alone ("how do I freeze my card if it is lost?"), so :meth:`QueryRewriter.search`
runs both queries and keeps the one with the stronger evidence. With a chat model
configured, the model rewrites the message as a standalone question
(``prompts/query_rewrite.j2``) and its rewrite is searched; a failing endpoint or an
unusable answer falls back to the rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cxbot.errors import LLMUnavailable
from cxbot.llm import endpoint_for
from cxbot.prompts import PromptLibrary, PromptTask

if TYPE_CHECKING:
    from cxbot.embeddings import Vector
    from cxbot.rag.store import Hit

__all__ = ["QueryRewriter", "is_follow_up", "standalone_query"]

log = logging.getLogger("cxbot.rag")

Turn = tuple[str, str]
"""(speaker, text): speaker ``"user"`` or ``"bot"``, as the conversation history keeps it."""

_WORD = re.compile(r"[a-z0-9£€$%']+")
_REFERS = re.compile(
    r"\b(it|its|it's|that|this|those|these|they|them|their|theirs|one|ones|same|"
    r"he|she|him|her|his)\b",
    re.I,
)
_ELLIPTIC = re.compile(r"^\W*(and|also|so|but|or|what about|how about|same for|plus)\b", re.I)
_FILLER = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "do", "does",
        "for", "from", "how", "i", "if", "in", "is", "it", "me", "my", "of", "on", "or", "so",
        "the", "to", "what", "when", "where", "which", "who", "why", "will", "with", "would",
        "you", "your", "about", "also", "much", "many", "long", "take", "get", "there", "that",
        "this", "they", "them", "their", "its", "one", "ok", "okay", "yes", "no", "please",
        "thanks", "thank", "then", "too", "any", "some", "have", "has", "need", "want",
    }
)  # fmt: skip
MIN_OWN_WORDS = 2
"""A message with fewer content words of its own leans on the conversation."""


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _FILLER]


def is_follow_up(message: str) -> bool:
    """Whether the message needs the conversation to be understood."""
    return bool(
        _REFERS.search(message)
        or _ELLIPTIC.search(message)
        or len(_content_words(message)) < MIN_OWN_WORDS
    )


def standalone_query(message: str, history: Sequence[Turn]) -> str:
    """The rule: a follow-up is searched together with the customer's last substantive
    earlier message; any other message is searched as it is."""
    if not history or not is_follow_up(message):
        return message
    for speaker, text in reversed(history):
        if speaker == "user" and len(_content_words(text)) >= 2 and text != message:
            return f"{text} {message}"
    return message


class QueryRewriter:
    """Rewrites follow-ups into standalone search queries (rule offline, LLM when given)."""

    def __init__(self, prompts: PromptLibrary | None = None, *, chat_model: Any = None) -> None:
        if chat_model is not None and prompts is None:
            raise ValueError("an LLM rewriter needs the prompt library (query_rewrite)")
        self.prompts = prompts
        self.chat_model = endpoint_for(chat_model, "query_rewrite")

    def rewrite(self, message: str, history: Sequence[Turn]) -> str:
        """The query to search for ``message`` (the message itself when it stands alone)."""
        if not history or not is_follow_up(message):
            return message
        if self.chat_model is not None:
            rewritten = self._ask(message, history)
            if rewritten:
                return rewritten
        return standalone_query(message, history)

    def search(
        self,
        message: str,
        vector: Vector,
        history: Sequence[Turn],
        *,
        embed: Callable[[str], Vector],
        retrieve: Callable[[Vector, str], list[Hit]],
    ) -> tuple[str, Vector, list[Hit]]:
        """Retrieve for ``message`` (its embedding ``vector``) in its conversation: the query
        searched, its vector and the passages found.

        A rule rewrite is searched beside the message as asked, and the one whose best
        passage scores higher wins; an LLM rewrite is searched alone.
        """
        query = self.rewrite(message, history)
        if query == message:
            return message, vector, retrieve(vector, message)
        query_vector = embed(query)
        hits = retrieve(query_vector, query)
        if self.chat_model is not None and query != standalone_query(message, history):
            return query, query_vector, hits
        asked = retrieve(vector, message)
        if asked and (not hits or asked[0].score > hits[0].score):
            return message, vector, asked
        return query, query_vector, hits

    def _ask(self, message: str, history: Sequence[Turn]) -> str | None:
        from langchain_core.messages import HumanMessage

        assert self.prompts is not None
        prompt = self.prompts.render(
            PromptTask.QUERY_REWRITE, history=list(history[-6:]), message=message
        )
        assert self.chat_model is not None
        try:
            reply = self.chat_model.invoke([HumanMessage(prompt)])
        except LLMUnavailable as exc:  # the rule answers instead
            log.warning("LLM query rewrite failed: %s", exc)
            return None
        text = str(reply.content).strip().strip('"').strip()
        if not text or len(text) > 4 * max(len(message), 80) or "\n" in text:
            log.warning("LLM query rewrite: unusable answer %r", text[:200])
            return None
        return text
