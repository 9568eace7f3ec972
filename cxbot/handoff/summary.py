"""The handoff summary a human agent reads instead of asking the customer to repeat.

Built from the conversation's state and event log: offline by template; with a chat model,
the ``handoff_summary`` prompt asks for JSON that is validated against
:class:`LLMSummaryFields` and retried once, falling back to the template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxbot.conversation.events import (
    BotUttered,
    Event,
    GuardrailTriggered,
    SlotRejected,
    UserUttered,
)
from cxbot.conversation.state import ConversationState
from cxbot.errors import LLMUnavailable
from cxbot.handoff.triggers import HUMAN_INTENT, SentimentLabel, asks_for_person
from cxbot.llm import endpoint_for
from cxbot.profiles.store import Profile
from cxbot.prompts import PromptLibrary, PromptTask

__all__ = [
    "AnsweredItem",
    "CustomerInfo",
    "HandoffSummary",
    "LLMSummaryFields",
    "SentimentInfo",
    "SummaryWriter",
    "TranscriptLine",
]

_NEXT_STEP = {
    "customer_request": "Greet the customer by name and pick up from the open question.",
    "repeated_failure": "The assistant could not answer; answer the open question directly.",
    "flow_retries": "Help the customer finish the task in progress with the slots so far.",
    "low_confidence": "The assistant did not understand; ask what the customer needs.",
    "negative_sentiment": "The customer is frustrated; acknowledge it, then answer directly.",
    "guardrail_blocks": "Several messages were blocked; check the transcript before replying.",
    "policy_topic": "A topic colleagues always handle; follow its procedure.",
    "verification_failed": (
        "The customer failed identity checks; verify them by the full procedure before "
        "discussing the account."
    ),
}
_TOPIC_STEP = {
    "complaint": "Log the complaint, acknowledge it and explain the complaints process.",
    "bereavement": "Offer condolences and start the bereavement process; no sales.",
    "fraud": "Secure the account first (freeze the card), then take the fraud report.",
}
_AGENT_ROUTE = "agent"


class CustomerInfo(BaseModel):
    """Who the customer is, as far as the handoff allowlist lets the agent see."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    segment: str | None = None
    facts: dict[str, str] = Field(
        default_factory=dict,
        description="Other profile fields the handoff allowlist shows (consent applied).",
    )


class SentimentInfo(BaseModel):
    """How the customer sounds: the mean lexicon score of their latest messages."""

    model_config = ConfigDict(frozen=True)

    label: SentimentLabel
    score: float


class AnsweredItem(BaseModel):
    """Something the assistant answered, with the sources its answer cited."""

    model_config = ConfigDict(frozen=True)

    question: str | None
    answer: str
    sources: list[str] = Field(default_factory=list)


class TranscriptLine(BaseModel):
    """One message of the conversation (customer text as stored: PII-redacted)."""

    model_config = ConfigDict(frozen=True)

    speaker: Literal["customer", "assistant", "agent"]
    text: str


class HandoffSummary(BaseModel):
    """What the human agent needs to take over without asking the customer to repeat."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    reason: str = Field(
        description="Why the conversation was handed over: the trigger, or the LLM's sentence."
    )
    trigger: str = Field(
        "", description="The trigger that fired (customer_request, policy_topic…), never rewritten."
    )
    queue: str
    topic: str | None = Field(None, description="Policy topic (complaint, bereavement, fraud…).")
    sentiment: SentimentInfo | None = None
    after_hours: bool = Field(False, description="Handed over outside business hours.")
    reopens: str | None = Field(None, description="When a colleague picks it up (after hours).")
    customer: CustomerInfo | None
    intent: str | None
    flow: str | None = None
    slots: dict[str, str] = Field(default_factory=dict)
    tried: list[str] = Field(default_factory=list, description="What the assistant did so far.")
    last_user_messages: list[str] = Field(default_factory=list)
    open_question: str | None = None
    answered: list[AnsweredItem] = Field(default_factory=list)
    transcript: list[TranscriptLine] = Field(
        default_factory=list, description="The latest messages, customer text PII-redacted."
    )
    suggested_next_step: str = ""
    written_by: str = "template"
    created_at: datetime

    def as_text(self) -> str:
        who = "unidentified customer"
        if self.customer:
            tags = ", ".join(t for t in (self.customer.id, self.customer.segment) if t)
            who = f"{self.customer.name} ({tags})".strip()
        lines = [
            f"Handoff to {self.queue}: {self.reason}"
            + (f" ({self.topic})" if self.topic else "")
            + (f", picked up {self.reopens}" if self.reopens else ""),
            f"Customer: {who}",
            f"Intent: {self.intent or 'unknown'}"
            + (f"; mood: {self.sentiment.label}" if self.sentiment else ""),
        ]
        if self.customer and self.customer.facts:
            listed = "; ".join(
                f"{k.replace('_', ' ')}: {v}" for k, v in self.customer.facts.items()
            )
            lines.append(f"Profile: {listed}")
        if self.flow:
            filled = ", ".join(f"{k}={v}" for k, v in self.slots.items()) or "none"
            lines.append(f"Task in progress: {self.flow} (slots: {filled})")
        if self.tried:
            lines.append("Tried: " + "; ".join(self.tried))
        if self.open_question:
            lines.append(f"Open question: {self.open_question}")
        lines.append(f"Next step: {self.suggested_next_step}")
        return "\n".join(lines)


class LLMSummaryFields(BaseModel):
    """The part of the summary an LLM writes (JSON)."""

    model_config = ConfigDict(extra="ignore")

    reason: str
    open_question: str | None = None
    tried: list[str] = Field(default_factory=list)
    suggested_next_step: str


def _heard(events: Sequence[Event]) -> list[UserUttered]:
    """The customer's messages that reached the assistant (not blocked by a guardrail)."""
    heard: list[UserUttered] = []
    blocked = False
    for event in events:
        if isinstance(event, GuardrailTriggered):
            blocked = blocked or (event.stage == "input" and event.action == "block")
        elif isinstance(event, UserUttered):
            if not blocked:
                heard.append(event)
            blocked = False
    return heard


def _answered(events: Sequence[Event]) -> list[AnsweredItem]:
    answered: list[AnsweredItem] = []
    question: str | None = None
    for event in events:
        if isinstance(event, UserUttered):
            question = event.text
        elif isinstance(event, BotUttered) and event.route == "rag" and not event.failed:
            text = event.text if len(event.text) <= 200 else event.text[:197] + "…"
            answered.append(AnsweredItem(question=question, answer=text, sources=[*event.sources]))
    return answered[-5:]


def _transcript(events: Sequence[Event], limit: int) -> list[TranscriptLine]:
    lines: list[TranscriptLine] = []
    for event in events:
        if isinstance(event, UserUttered):
            lines.append(TranscriptLine(speaker="customer", text=event.text))
        elif isinstance(event, BotUttered):
            who: Literal["assistant", "agent"] = (
                "agent" if event.route == _AGENT_ROUTE else "assistant"
            )
            lines.append(TranscriptLine(speaker=who, text=event.text))
    return lines[-limit:]


def _sentiment(state: ConversationState) -> SentimentInfo:
    recent = state.sentiment[-3:]
    if not recent:
        return SentimentInfo(label="neutral", score=0.0)
    score = round(sum(recent) / len(recent), 2)
    label: SentimentLabel = "negative" if score < 0 else "positive" if score > 0 else "neutral"
    return SentimentInfo(label=label, score=score)


def _tried(events: Sequence[Event]) -> list[str]:
    tried: list[str] = []
    for event in events:
        if isinstance(event, BotUttered):
            outcome = "did not help" if event.failed else "answered"
            text = event.text if len(event.text) <= 90 else event.text[:87] + "…"
            tried.append(f"{event.route} ({outcome}): {text}")
        elif isinstance(event, SlotRejected):
            tried.append(f"asked again for {event.slot}: {event.reason}")
    return tried[-6:]


class SummaryWriter:
    """Writes :class:`HandoffSummary` values."""

    def __init__(self, prompts: PromptLibrary, chat_model: Any = None) -> None:
        self.prompts = prompts
        self.chat_model = endpoint_for(chat_model, "handoff_summary")

    def run(
        self,
        *,
        state: ConversationState,
        events: Sequence[Event],
        reason: str,
        queue: str,
        profile: Profile | None,
        now: datetime,
        facts: Mapping[str, str] | None = None,
        topic: str | None = None,
        reopens: str | None = None,
        transcript_turns: int = 10,
    ) -> HandoffSummary:
        """The summary of a conversation handed over for ``reason``.

        ``facts`` are the profile fields the handoff allowlist and consent let the agent see
        (:func:`~cxbot.profiles.store.visible_facts`); the summary shows those and nothing
        else of the profile. Without ``facts`` it shows the name and segment.
        """
        users = [e.text for e in events if isinstance(e, UserUttered)]
        intents = [e.intent for e in events if isinstance(e, UserUttered) and e.intent]
        customer: CustomerInfo | None = None
        if profile is not None and facts is None:
            segment = profile.fields.get("segment")
            customer = CustomerInfo(id=profile.id, name=profile.name, segment=segment)
        elif profile is not None and facts is not None:
            customer = CustomerInfo(
                id=profile.id,
                name=facts.get("name", ""),
                segment=facts.get("segment"),
                facts={k: v for k, v in facts.items() if k not in ("name", "segment")},
            )
        step = _NEXT_STEP.get(reason, "Read the transcript and continue.")
        if topic is not None:
            step = _TOPIC_STEP.get(topic, step)
        summary = HandoffSummary(
            conversation_id=state.conversation_id,
            reason=reason,
            trigger=reason,
            queue=queue,
            topic=topic,
            sentiment=_sentiment(state),
            after_hours=reopens is not None,
            reopens=reopens,
            customer=customer,
            intent=next((i for i in reversed(intents) if i != HUMAN_INTENT), None),
            flow=state.flow.flow if state.flow else None,
            slots=dict(state.flow.slots) if state.flow else {},
            tried=_tried(events),
            last_user_messages=users[-3:],
            open_question=next(
                (
                    e.text
                    for e in reversed(_heard(events))
                    if e.intent != HUMAN_INTENT and not asks_for_person(e.text)
                ),
                None,
            ),
            answered=_answered(events),
            transcript=_transcript(events, transcript_turns),
            suggested_next_step=step,
            created_at=now,
        )
        if self.chat_model is None:
            return summary
        return self._with_llm(summary)

    def _with_llm(self, draft: HandoffSummary) -> HandoffSummary:
        from langchain_core.messages import HumanMessage

        prompt = self.prompts.render(
            PromptTask.HANDOFF_SUMMARY,
            draft=draft.model_dump(mode="json", exclude={"written_by", "created_at"}),
            schema=json.dumps(LLMSummaryFields.model_json_schema()),
        )
        messages: list[Any] = [HumanMessage(prompt)]
        assert self.chat_model is not None
        for _ in range(2):
            try:
                reply = self.chat_model.invoke(messages)
            except LLMUnavailable:  # recorded in the turn; the handoff keeps the template
                return draft
            text = str(reply.content)
            match = re.search(r"\{.*\}", text, re.S)
            try:
                fields = LLMSummaryFields.model_validate_json(match.group(0) if match else text)
            except ValidationError as exc:
                messages += [
                    reply,
                    HumanMessage(
                        self.prompts.render(
                            PromptTask.HANDOFF_SUMMARY_RETRY, errors=exc.errors()[:2]
                        )
                    ),
                ]
                continue
            return draft.model_copy(update={**fields.model_dump(), "written_by": "llm"})
        return draft
