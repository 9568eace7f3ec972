"""Agent assist: what a human agent sees beside a conversation they reply to.

:class:`AgentAssist` reads a conversation from the assistant's store and suggests replies
(grounded in the knowledge, staff-only articles included, or the flow's next question),
lists the relevant articles, keeps a live summary, shows what the last customer message
asked for (intents, entities) and names the next best action. :meth:`AgentAssist.observe`
records the messages of a conversation a human answers, so suggestions follow it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from cxbot.conversation.events import (
    BotUttered,
    Event,
    GuardrailTriggered,
    HandoffRequested,
    UserUttered,
)
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState
from cxbot.conversation.store import ConcurrentUpdate
from cxbot.embeddings import features_of
from cxbot.errors import UnknownConversation
from cxbot.flows.actions import ActionContext
from cxbot.handoff.summary import HandoffSummary
from cxbot.handoff.triggers import HUMAN_INTENT
from cxbot.pipeline import clean_message
from cxbot.profiles.store import visible_facts
from cxbot.rag.store import PUBLIC, Hit
from cxbot.types import Citation, NLUResult

if TYPE_CHECKING:
    from cxbot.assistant import Assistant
    from cxbot.config import ProfileUse
    from cxbot.embeddings import Vector

__all__ = [
    "AgentAssist",
    "Article",
    "AssistSuggestions",
    "CitationOut",
    "DetectedEntity",
    "DetectedIntent",
    "SuggestedReply",
]

Speaker = Literal["customer", "agent"]

AGENT_ROUTE = "agent"
"""The ``route`` of a :class:`BotUttered` event that records a human agent's message."""

_IDENTITY_INTENTS = re.compile(
    r"\b(my )?(card|account|balance|fraud|lost|stolen|blocked|frozen|freeze|pin)\b", re.I
)
"""Intents and messages about a customer's own money or card: the agent verifies who they
talk to first."""

_FLOW_NOUNS = {"book": "booking", "reschedule": "new time", "cancel": "cancellation"}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CitationOut(_Out):
    """A passage a suggested reply relies on."""

    source: str = Field(description="Document path relative to the knowledge folder.")
    title: str
    snippet: str
    score: float


class SuggestedReply(_Out):
    """A reply the agent can send as is or edit."""

    text: str
    kind: Literal["knowledge", "flow"] = Field(
        description="knowledge: grounded in articles; flow: the task's next question."
    )
    citations: list[CitationOut] = Field(default_factory=list)
    internal: bool = Field(
        default=False,
        description="Written from staff-only articles: guidance to act on, not to send as is.",
    )


class Article(_Out):
    """A knowledge passage relevant to the last customer message."""

    source: str
    title: str
    snippet: str
    score: float = Field(description="Cosine similarity to the message (1 = identical).")
    internal: bool = Field(description="Staff-only: never quote it to the customer verbatim.")


class DetectedIntent(_Out):
    name: str
    score: float


class DetectedEntity(_Out):
    kind: str
    text: str
    value: str


class AssistSuggestions(_Out):
    """Everything agent assist suggests for one conversation, as of its last message."""

    conversation_id: str
    handed_off: bool
    last_customer_message: str | None = Field(
        description="The last customer message, PII-redacted."
    )
    suggested_replies: list[SuggestedReply] = Field(default_factory=list)
    articles: list[Article] = Field(default_factory=list)
    summary: HandoffSummary
    intents: list[DetectedIntent] = Field(
        default_factory=list, description="Best intents of the last customer message."
    )
    intent: str | None = Field(None, description="The intent above the out-of-scope threshold.")
    entities: list[DetectedEntity] = Field(default_factory=list)
    next_best_action: str = Field(description="What the agent should do next, in a few words.")


class AgentAssist:
    """The human agent's side of an assistant: suggestions for a conversation in its store."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    # -- recording ------------------------------------------------------------------------
    def observe(
        self, conversation_id: str, speaker: Speaker, text: str, *, start: bool = False
    ) -> None:
        """Record a message of a conversation a human answers (no assistant reply).

        A customer message is screened by the input guardrails like a turn (PII redacted,
        verdicts audited) but never blocked: a person reads it. An agent message is stored
        as the agent's. ``start`` allows a conversation the store does not know yet.

        Raises :class:`~cxbot.errors.UnknownConversation` (unknown and not ``start``) or
        :class:`~cxbot.errors.InvalidMessage` (unusable text).
        """
        bot = self.assistant
        bot.warm_up()
        if speaker not in ("customer", "agent"):
            raise ValueError(f"speaker must be 'customer' or 'agent', not {speaker!r}")
        cleaned = clean_message(text, bot.config.limits.max_message_chars)
        events: list[Event]
        if speaker == "customer":
            verdicts = bot.pipeline.screen_input(cleaned)
            audits: list[Event] = [
                GuardrailTriggered("input", name, v.action, v.reason, v.score)
                for name, v in verdicts
                if v.action != "allow"
            ]
            redacted = next((v.text for _, v in reversed(verdicts) if v.text is not None), cleaned)
            events = [*audits, UserUttered(redacted)]
        else:
            events = [BotUttered(cleaned, AGENT_ROUTE)]
        store = bot.deps.conversations
        for attempt in range(3):
            state = store.load(conversation_id)
            if state.version == 0 and not start:
                raise UnknownConversation(f"no conversation {conversation_id!r}")
            after = apply_all(state, events, history_limit=bot.config.limits.history_turns)
            try:
                store.commit(replace(after, turn=after.turn + 1), events)
                return
            except ConcurrentUpdate:
                if attempt == 2:
                    raise

    # -- reading --------------------------------------------------------------------------
    def _load(self, conversation_id: str) -> tuple[ConversationState, list[Event]]:
        state = self.assistant.deps.conversations.load(conversation_id)
        if state.version == 0:
            raise UnknownConversation(f"no conversation {conversation_id!r}")
        return state, self.assistant.deps.conversations.events(conversation_id)

    def queue(self, conversation_id: str) -> str | None:
        """The handoff queue of a handed-over conversation, else ``None``."""
        state, events = self._load(conversation_id)
        return _handoff_queue(state, events)

    def summary(self, conversation_id: str) -> HandoffSummary:
        """The conversation's summary: the handoff summary once handed over, else one
        written now (reason ``live``, the default queue ``server.default_queue``) with the
        profile fields agent assist may show."""
        state, events = self._load(conversation_id)
        return self._summary(state, events)

    def _summary(self, state: ConversationState, events: list[Event]) -> HandoffSummary:
        bot = self.assistant
        handoff = next((e for e in reversed(events) if isinstance(e, HandoffRequested)), None)
        profile = bot.deps.profiles.get(state.customer_id) if state.customer_id else None
        cfg = bot.config.profiles
        use: ProfileUse = "handoff" if handoff is not None else "assist"
        facts = visible_facts(profile, cfg.fields_for(use), cfg.consent_gated) if profile else None
        return bot.pipeline.summaries.run(
            state=state,
            events=events,
            reason=handoff.reason if handoff else "live",
            queue=handoff.queue if handoff else bot.config.server.default_queue,
            profile=profile,
            now=bot.deps.clock(),
            facts=facts,
            topic=handoff.topic if handoff else state.topic,
            transcript_turns=bot.config.handoff.transcript_turns,
        )

    def suggest(self, conversation_id: str) -> AssistSuggestions:
        """Suggestions for the agent as of the conversation's last message.

        Raises :class:`~cxbot.errors.UnknownConversation`.
        """
        bot = self.assistant
        bot.warm_up()
        state, events = self._load(conversation_id)
        message = next((e.text for e in reversed(events) if isinstance(e, UserUttered)), None)
        nlu: NLUResult | None = None
        hits: list[Hit] = []
        replies: list[SuggestedReply] = []
        if state.flow is not None:
            ctx = ActionContext(
                customer_id=state.customer_id,
                now=bot.deps.clock().replace(tzinfo=None),
                calendar=bot.deps.calendar,
            )
            replies.append(SuggestedReply(text=bot.pipeline.flows.prompt(state, ctx), kind="flow"))
        if message is not None:
            vector = bot.deps.embedder.embed_query(message)
            nlu = bot.pipeline.nlu.run(
                message, features_of(bot.deps.embedder, message, vector), bot.deps.clock()
            )
            question, question_vector, hits = self._search(state, message, vector)
            # in a task, a knowledge answer only for a question beside it (not a slot value)
            answers = nlu.intent is not None if state.flow is not None else True
            if answers and nlu.intent not in bot.pipeline.flows.flows:
                # one reply the customer may read as is, from public articles; one from the
                # staff-only ones, for the agent to act on and put in their own words
                public = bot.pipeline.retriever.run(question_vector, question)
                staff = [h for h in hits if _internal(h)]
                # the articles the public reply cites are listed too
                known = {h.id for h in hits}
                extra = [h for h in public if h.id not in known]
                hits = sorted([*hits, *extra], key=lambda h: -h.score)
                for group, internal in ((public, False), (staff, True)):
                    answer = bot.pipeline.answerer.run(question, question_vector, group, {})
                    if answer is not None:
                        replies.append(
                            SuggestedReply(
                                text=answer.text,
                                kind="knowledge",
                                internal=internal,
                                citations=[_citation_out(c) for c in answer.citations],
                            )
                        )
        return AssistSuggestions(
            conversation_id=conversation_id,
            handed_off=state.handed_off,
            last_customer_message=message,
            suggested_replies=replies,
            articles=[_article(h) for h in hits],
            summary=self._summary(state, events),
            intents=[
                DetectedIntent(name=s.name, score=round(s.score, 4))
                for s in (nlu.ranking[:3] if nlu else ())
            ],
            intent=nlu.intent if nlu else None,
            entities=[
                DetectedEntity(kind=e.kind, text=e.text, value=e.value)
                for e in (nlu.entities if nlu else ())
            ],
            next_best_action=self._next_best_action(state, events, message, nlu, hits),
        )

    def _search(
        self, state: ConversationState, message: str, vector: Vector
    ) -> tuple[str, Vector, list[Hit]]:
        """Knowledge for ``message`` in its conversation, staff-only articles included."""
        pipeline = self.assistant.pipeline

        def retrieve(v: Vector, text: str) -> list[Hit]:
            return pipeline.retriever.run(v, text, internal=True)

        # what came before the message itself (a reply to it may follow in the history)
        spoke = [i for i, (who, _) in enumerate(state.history) if who == "user"]
        history = state.history[: spoke[-1]] if spoke else state.history
        if pipeline.rewriter is not None and history:
            return pipeline.rewriter.search(
                message,
                vector,
                history,
                embed=self.assistant.deps.embedder.embed_query,
                retrieve=retrieve,
            )
        return message, vector, retrieve(vector, message)

    def _next_best_action(
        self,
        state: ConversationState,
        events: list[Event],
        message: str | None,
        nlu: NLUResult | None,
        hits: list[Hit],
    ) -> str:
        """A few words on what to do next, by the first rule that applies."""
        flows = self.assistant.pipeline.flows.flows
        if state.flow is not None:
            spec = flows.get(state.flow.flow)
            if spec is not None and spec.requires_customer and state.customer_id is None:
                return "verify identity"
            if state.flow.awaiting_confirmation:
                verb = state.flow.flow.split("_", 1)[0]
                return f"confirm the {_FLOW_NOUNS.get(verb, state.flow.flow.replace('_', ' '))}"
            if state.flow.requested:
                return f"ask for the {state.flow.requested.replace('_', ' ')}"
        intent = nlu.intent if nlu else None
        if state.customer_id is None:
            spec = flows.get(intent) if intent is not None else None
            if spec is not None and spec.requires_customer:
                return "verify identity"
            # about their own card or account (not a general question): who is this?
            if intent != "question" and _IDENTITY_INTENTS.search(f"{intent or ''} {message or ''}"):
                return "verify identity"
        if intent is not None and intent in flows:
            return f"help with {intent.replace('_', ' ')}"
        failed = sum(1 for e in events if isinstance(e, BotUttered) and e.failed)
        if nlu is not None and not hits and (failed or intent is None):
            return "offer a callback"
        if hits:
            return "answer from the top article"
        if intent == HUMAN_INTENT or state.handed_off:
            return "greet the customer and take over"
        return "ask how you can help"


def _handoff_queue(state: ConversationState, events: list[Event]) -> str | None:
    if not state.handed_off:
        return None
    return next((e.queue for e in reversed(events) if isinstance(e, HandoffRequested)), None)


def _citation_out(citation: Citation) -> CitationOut:
    return CitationOut(
        source=citation.source,
        title=citation.title,
        snippet=citation.snippet,
        score=citation.score,
    )


def _article(hit: Hit) -> Article:
    from cxbot.rag.answer import citation_of  # the title and snippet answers cite

    cited = citation_of(hit)
    return Article(
        source=cited.source,
        title=cited.title,
        snippet=cited.snippet,
        score=cited.score,
        internal=_internal(hit),
    )


def _internal(hit: Hit) -> bool:
    """Whether a passage is staff-only."""
    return bool(hit.metadata.get("audience", PUBLIC) != PUBLIC)
