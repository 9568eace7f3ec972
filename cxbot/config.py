"""The configuration tree read from ``cxbot.yaml``.

Every field has a description (``cxbot validate`` and the JSON schema show them); unknown
keys are errors that name the file, the line and the closest valid key. Any leaf can be
overridden from the environment: ``CXBOT_LLM__BASE_URL`` sets ``llm.base_url``. Secrets
(the LLM API key) are read only from the environment variable the config names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cxbot._yaml import load_yaml_model, read_yaml
from cxbot.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "PROFILE_USES",
    "CxbotConfig",
    "ProfileAllowlist",
    "ProfileUse",
    "load_config",
]

CONFIG_FILE = "cxbot.yaml"
ENV_PREFIX = "CXBOT_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnowledgeConfig(_Section):
    dir: str = Field(
        "knowledge", description="Folder of knowledge documents, relative to the project."
    )
    chunk_size: int = Field(900, gt=100, description="Target chunk size in characters.")
    chunk_overlap: int = Field(120, ge=0, description="Characters shared by neighbouring chunks.")
    batch_chunks: int = Field(
        256,
        gt=0,
        description="Chunks embedded and written per ingest batch (what an interrupted run keeps).",
    )


class StorageConfig(_Section):
    dir: str = Field(".cxbot", description="Folder for the embedded stores (Chroma, SQLite).")
    chroma_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s:]+(:\d+)?/?$",
        description=(
            "Chroma server for the knowledge vectors, e.g. http://127.0.0.1:8000; unset = the "
            "embedded store under dir. The ingest manifest and keyword index stay under dir."
        ),
    )
    turn_log: bool = Field(
        True,
        description=(
            "Record each turn's clock, stage timings and redacted message vector beside its "
            "events (conversations.sqlite) for `cxbot insights` and `cxbot suggest`."
        ),
    )
    redis_url: str | None = Field(
        None,
        pattern=r"^(rediss?|unix)://\S+$",
        description=(
            "Redis for conversation state, per-conversation locks, message ids and the "
            "calendar, shared by several workers, e.g. redis://127.0.0.1:6379/0 (extra "
            "cxbot[redis]); unset = SQLite files under dir (one process)."
        ),
    )
    redis_prefix: str = Field(
        "cxbot",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key, so several assistants can share one Redis.",
    )
    lock_ttl_s: float = Field(
        10.0,
        gt=0,
        description=(
            "Redis: a conversation's lock expires this long after its holder stops renewing "
            "it (a killed worker holds a conversation no longer than this)."
        ),
    )
    message_ttl_s: int = Field(
        86400,
        gt=0,
        description=(
            "How long the reply to a client message id is kept: a retry with the same id "
            "within this time gets the same reply and the turn is not run again."
        ),
    )


class EmbeddingConfig(_Section):
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model: 'all-MiniLM-L6-v2' (offline) or a local path.",
    )
    batch_size: int = Field(
        32,
        gt=0,
        description=(
            "Texts per encoder batch. At ingest, 32 embeds ~900-character passages about 20% "
            "faster than 64 and with half the peak memory."
        ),
    )
    cache_size: int = Field(4096, ge=0, description="Query embeddings kept in the LRU cache.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description=(
            "Arithmetic of the knowledge passages embedded at ingest: bf16 (faster, cosine "
            "0.9999 to fp32), fp32, or auto = bf16 where the CPU has native bf16 "
            "(AVX512-BF16, AMX). Questions, and the texts compared with them at a turn, are "
            "always embedded in fp32."
        ),
    )


class LLMConfig(_Section):
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; unset = offline.")
    model: str | None = Field(None, description="Model name sent to the endpoint.")
    api_key_env: str = Field(
        "CXBOT_LLM_API_KEY", description="Environment variable that holds the API key."
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    timeout_s: float = Field(
        15.0, gt=0, description="Timeout of one request in seconds (a streamed answer: per read)."
    )
    max_retries: int = Field(
        2, ge=0, description="Retries after a timeout, a lost connection, a 5xx or a 429 answer."
    )
    backoff_s: float = Field(
        0.5,
        ge=0,
        description="Wait before the first retry; it doubles for each further one (with jitter).",
    )
    deadline_s: float = Field(
        30.0,
        gt=0,
        description=(
            "Longest a turn takes when the LLM is slow or failing: its requests, retries and "
            "waits stop in time for the offline answer (extractive answer, template summary) "
            "to be given by then."
        ),
    )
    offline_reserve_s: float = Field(
        1.0,
        ge=0,
        description=(
            "Part of deadline_s kept for the rest of the turn once the LLM has failed (the "
            "offline answer, guardrails, storing the turn)."
        ),
    )

    @model_validator(mode="after")
    def _reserve_below_deadline(self) -> LLMConfig:
        if self.offline_reserve_s >= self.deadline_s:
            raise ValueError(
                f"offline_reserve_s ({self.offline_reserve_s}) must be less than deadline_s "
                f"({self.deadline_s})"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)


class NLUConfig(_Section):
    intents_file: str = Field(
        "flows/intents.yaml", description="Example utterances per intent (besides flow intents)."
    )
    classifier: Literal["trained", "examples"] = Field(
        "trained",
        description=(
            "trained: linear + fine-tuned heads over the turn's encoding (cxbot train nlu); "
            "examples: nearest example utterances, no training."
        ),
    )
    oos_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "Below this confidence a message is out of scope; default: the threshold tuned "
            "on held-back examples (trained) or 0.45 (examples)."
        ),
    )
    neighbours: int = Field(3, gt=0, description="Examples averaged per intent.")
    min_similarity: float = Field(
        0.45,
        ge=0,
        le=1,
        description=(
            "trained: a predicted intent also needs its `neighbours` nearest examples this "
            "similar (mean cosine) to the message; 0 turns the check off."
        ),
    )
    model_dir: str | None = Field(
        None, description="Where the trained model is saved; default: <storage>/nlu."
    )
    tune_layers: int = Field(
        2, ge=0, le=6, description="Top encoder layers fine-tuned (0: linear head only)."
    )
    llm: bool = Field(
        False,
        description=(
            "Ask the configured LLM to classify intents (prompts/intent_classify.j2); the "
            "trained model answers when the LLM fails or gives an unusable answer."
        ),
    )


class RAGConfig(_Section):
    top_k: int = Field(4, gt=0, description="Passages retrieved per question.")
    min_score: float = Field(
        0.35, ge=0, le=1, description="Below this similarity a passage is not evidence."
    )
    max_sentences: int = Field(3, gt=0, description="Sentences in an offline extractive answer.")
    hybrid: bool = Field(
        True, description="Fuse keyword (BM25) with dense retrieval (RRF); false = dense only."
    )
    profile_threshold: float = Field(
        0.45, ge=0, le=1, description="Similarity a profile field needs to be joined to an answer."
    )
    keyword_weight: float = Field(
        0.5, ge=0, description="Weight of the keyword (BM25) ranking in the fusion (dense = 1)."
    )
    rewrite_follow_ups: bool = Field(
        True,
        description=(
            'Search a follow-up question ("does it…") together with what it refers to in '
            "the conversation (rule offline, the LLM when configured)."
        ),
    )
    reranker: str | None = Field(
        None,
        description=(
            "Folder of a sentence-transformers cross-encoder (relative to the project) that "
            "re-orders retrieved passages; unset or missing = retrieval order."
        ),
    )
    rerank_candidates: int = Field(
        20, gt=0, description="Passages retrieved for the cross-encoder to choose top_k from."
    )


ProfileUse = Literal["rag", "handoff", "assist", "flows"]
"""Where profile fields are read: answers, the handoff summary, agent assist, slot prefill."""

PROFILE_USES: tuple[ProfileUse, ...] = ("rag", "handoff", "assist", "flows")

_DEFAULT_ALLOWLIST = ("name", "segment", "preferred_branch", "card_status", "accounts")


class ProfileAllowlist(_Section):
    """The profile fields each use may read; a use the mapping leaves out reads none.

    ``name`` is the customer's name; any other entry is a key of the profile record.
    Consent gates (``profiles.consent_gated``) apply on top, in every use.
    """

    rag: tuple[str, ...] = Field((), description="Fields an answer may use and cite.")
    handoff: tuple[str, ...] = Field(
        (), description="Fields the handoff summary shows the human agent."
    )
    assist: tuple[str, ...] = Field(
        (), description="Fields agent assist shows the human agent beside its suggestions."
    )
    flows: tuple[str, ...] = Field((), description="Fields that may prefill flow slots.")

    @classmethod
    def every_use(cls, fields: Sequence[str]) -> ProfileAllowlist:
        """The same fields for every use."""
        return cls.model_validate({use: tuple(fields) for use in PROFILE_USES})

    def fields_for(self, use: ProfileUse) -> tuple[str, ...]:
        """The fields ``use`` may read."""
        match use:
            case "rag":
                return self.rag
            case "handoff":
                return self.handoff
            case "assist":
                return self.assist
            case "flows":
                return self.flows
            case _:
                assert_never(use)


class ProfilesConfig(_Section):
    fixture: str | None = Field(
        None, description="JSON file of customers loaded into the SQLite profile store."
    )
    allowlist: ProfileAllowlist = Field(
        default_factory=lambda: ProfileAllowlist.every_use(_DEFAULT_ALLOWLIST),
        description=(
            "Profile fields the assistant may read: a list (every use) or a mapping from use "
            "(rag, handoff, assist, flows) to a list; a use left out of the mapping reads none."
        ),
    )
    descriptions: Mapping[str, str] = Field(
        default_factory=dict,
        description="Field → how a customer asks about it; joins the field to matching questions.",
    )
    consent_gated: Mapping[str, str] = Field(
        default_factory=dict,
        description="Field → consent flag it needs (e.g. offers: marketing).",
    )

    @field_validator("allowlist", mode="before")
    @classmethod
    def _list_means_every_use(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {use: tuple(value) for use in PROFILE_USES}
        if isinstance(value, Mapping):
            # an environment override (CXBOT_PROFILES__ALLOWLIST__RAG=name,segment) is a string
            return {
                use: tuple(f.strip() for f in fields.split(",") if f.strip())
                if isinstance(fields, str)
                else fields
                for use, fields in value.items()
            }
        return value

    def fields_for(self, use: ProfileUse) -> tuple[str, ...]:
        """The profile fields ``use`` may read (before consent gates)."""
        return self.allowlist.fields_for(use)


class CalendarConfig(_Section):
    fixture: str | None = Field(None, description="JSON file of branches and advisors.")


class GroundingConfig(_Section):
    """How the grounding guardrail checks knowledge answers against their passages."""

    judge: Literal["offline", "llm"] = Field(
        "offline",
        description=(
            "offline: word, number and embedding checks; llm: the chat model judges the "
            "sentences that are not quoted from a passage (prompts/grounding_judge.j2), "
            "with the offline check when no model is configured or it fails."
        ),
    )
    nli_model: str | None = Field(
        None,
        description=(
            "Folder of a local NLI cross-encoder (sentence-transformers CrossEncoder); "
            "missing or unset: the offline check."
        ),
    )
    max_unsupported: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Share of unsupported sentences above which the whole answer is replaced by the "
            "'ungrounded' reply; at or below it, only those sentences are removed."
        ),
    )


class TopicGuardConfig(_Section):
    """How close a message must come to a guardrail's reference messages to block."""

    similarity_floor: float = Field(
        0.5, ge=0, le=1, description="Least similarity to a reference message that blocks."
    )
    margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="How much closer to the reference than to any intent example it must be.",
    )


class GuardrailsConfig(_Section):
    input: tuple[str, ...] = Field(
        ("pii", "injection", "abuse", "scope"), description="Input guardrails by name, in order."
    )
    output: tuple[str, ...] = Field(
        ("pii_leak", "prompt_leak", "grounding", "profanity"),
        description="Output guardrails by name, in order.",
    )
    grounding: GroundingConfig = Field(
        default_factory=GroundingConfig,  # type: ignore[arg-type]
        description="The grounding guardrail (output).",
    )
    profanity: Literal["mask", "block"] = Field(
        "mask",
        description="The profanity guardrail (output): mask the words, or block the reply.",
    )
    competitors: tuple[str, ...] = Field(
        (),
        description=(
            "Other companies' names; comparing them or asking about them gets a scoped "
            "reply from the scope guardrail (switching from them is in scope)."
        ),
    )
    scope: TopicGuardConfig = Field(
        default_factory=TopicGuardConfig,  # type: ignore[arg-type]
        description="The scope guardrail's thresholds.",
    )
    abuse: TopicGuardConfig = Field(
        default_factory=lambda: TopicGuardConfig(similarity_floor=0.58, margin=0.05),
        description="The abuse guardrail's thresholds.",
    )
    injection_head: str | None = Field(
        None,
        description=(
            "Injection classifier head (JSON from `cxbot train injection`), "
            "relative to the project folder; none: the head shipped with cxbot."
        ),
    )
    injection_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "Attack probability at which the injection classifier blocks; none: the "
            "threshold stored with the head."
        ),
    )
    injection_llm_floor: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "With an LLM configured, messages the classifier scores at least this high "
            "(but under its threshold) are also judged by the LLM (prompts/injection_check.j2); "
            "none: no LLM check."
        ),
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class PolicyTopic(_Section):
    """A subject that always goes to a person (complaints, bereavement, fraud)."""

    phrases: tuple[str, ...] = Field(
        (),
        description=(
            "Case-insensitive regular expressions matched on word boundaries in the customer's "
            "message; write them about the customer's own situation, not questions about it."
        ),
    )
    intents: tuple[str, ...] = Field((), description="Intents that mean this topic.")

    @field_validator("phrases")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for phrase in value:
            try:
                re.compile(phrase)
            except re.error as exc:
                raise ValueError(f"phrase {phrase!r} is not a regular expression: {exc}") from None
        return value


_DEFAULT_TOPICS: dict[str, PolicyTopic] = {
    "complaint": PolicyTopic(
        intents=(),
        phrases=(
            r"(make|file|raise|lodge|log|register|submit|open) an? (formal |official )?complaint",
            r"i('d| would| want to| wish to| need to) (like to )?complain",
            r"this is a (formal )?complaint",
        ),
    ),
    "bereavement": PolicyTopic(
        intents=(),
        phrases=(
            r"(my|our) (\w+ ){0,2}(has |had |have )?(just |recently |sadly )?"
            r"(died|passed away|passed on|passed)",
            r"(death|passing|loss) of (my|our)",
            r"(i am|i'm|we are|we're|i've been|i have been) (recently |just )?bereaved",
            r"lost my (mum|mother|dad|father|husband|wife|partner|son|daughter|brother|sister)",
        ),
    ),
    "fraud": PolicyTopic(
        intents=(),
        phrases=(
            r"(i've|i have|i was|we've|we have|we were) (just )?been "
            r"(scammed|defrauded|hacked)",
            r"(i'm|i am|i was) (the )?(a )?victim of (fraud|a scam)",
            r"fraudulent (payments?|transactions?|charges?|withdrawals?) (on|from) my",
            r"someone (has )?(stole|stolen|taken|took|emptied) (money|my money|my savings|£)",
            r"(i|we) (didn't|did not|never) (make|authorise|authorize) (this|these|that|those) "
            r"(payments?|transactions?|withdrawals?)",
            r"(my )?(account|card) (has been|was) (hacked|compromised)",
        ),
    ),
}


class BusinessHoursConfig(_Section):
    """When colleagues are there to pick a handoff up."""

    timezone: str = Field(
        "Europe/London",
        description="IANA time zone the hours are in (naive clocks are read in it).",
    )
    weekly: dict[Weekday, str] = Field(
        default_factory=dict,
        description='Opening hours per weekday, "HH:MM-HH:MM" (mon … sun); a day left out is '
        "closed.",
    )
    holidays: tuple[date, ...] = Field((), description="Dates (YYYY-MM-DD) closed all day.")
    after_hours_queue: str | None = Field(
        None, description="Queue of handoffs outside the hours (default: the usual queue)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/London)") from None
        return value

    @field_validator("weekly")
    @classmethod
    def _spans(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for day, span in value.items():
            match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)", span)
            if match is None or span[:5] >= span[6:]:
                raise ValueError(f'{day}: "{span}" is not "HH:MM-HH:MM" with start before end')
        return value


class HandoffConfig(_Section):
    max_failed_turns: int = Field(
        2, gt=0, description="Failed turns in a row that hand the conversation to a human."
    )
    queue: str = Field("general", description="Queue a handoff is routed to.")
    request_phrases: bool = Field(
        True,
        description=(
            'Hand over when the message asks for a person ("agent", "real person", "speak to '
            'someone"…) even if the intent classifier did not say human_agent.'
        ),
    )
    low_confidence: float = Field(
        0.55,
        ge=0,
        le=1,
        description="Intent confidence below which a turn outside a flow counts as not understood.",
    )
    low_confidence_turns: int = Field(
        3, gt=0, description="Not-understood turns in a row that hand the conversation over."
    )
    negative_turns: int = Field(
        2, gt=0, description="Negative messages in a row (sentiment lexicon) that hand over."
    )
    negative_sum: float = Field(
        -4.0,
        lt=0,
        description="Hand over when the sentiment of the last 3 messages adds up to this or less.",
    )
    max_blocked_turns: int = Field(
        2, gt=0, description="Blocked messages in a conversation that hand it over."
    )
    policy_topics: dict[str, PolicyTopic] = Field(
        default_factory=lambda: dict(_DEFAULT_TOPICS),
        description="Topics that always go to a person: name → phrases and intents.",
    )
    queues: dict[str, str] = Field(
        default_factory=lambda: {"fraud": "fraud-team", "bereavement": "bereavement"},
        description=(
            "Queue by policy topic, reason or intent (checked in that order); "
            "anything else goes to 'queue'."
        ),
    )
    hours: BusinessHoursConfig | None = Field(
        None, description="Business hours; unset = colleagues are always there."
    )
    transcript_turns: int = Field(
        10, gt=0, description="Messages of the conversation the summary carries."
    )


class LimitsConfig(_Section):
    max_message_chars: int = Field(4000, gt=0, description="Longest accepted user message.")
    history_turns: int = Field(20, gt=0, description="Messages kept in the conversation state.")


class RasaConfig(_Section):
    actions_package: str | None = Field(
        None,
        description=(
            "Python package of rasa-sdk actions run in-process by flows (action: rasa.<name>); "
            "imported with the project folder on the import path."
        ),
    )
    action_server: str | None = Field(
        None, description="Webhook URL of a running rasa action server (…/webhook)."
    )
    timeout_s: float = Field(10.0, gt=0, description="Action server request timeout.")


ServerRole = Literal["customer", "agent", "supervisor", "admin"]


class ServerKey(_Section):
    """One API key of ``cxbot serve``: the secret is read from ``key_env``, never the file."""

    key_env: str = Field(
        description="Environment variable holding the key (sent as `Authorization: Bearer`)."
    )
    role: ServerRole = Field(
        description=(
            "customer: opens sessions (widgets); agent: reads and observes conversations of "
            "its queues; supervisor: reads every conversation; admin: ingest."
        )
    )
    queues: tuple[str, ...] = Field((), description="Queues an agent key may see.")


class ServerConfig(_Section):
    """The HTTP API of ``cxbot serve`` (optional extra ``cxbot[server]``)."""

    keys: tuple[ServerKey, ...] = Field((), description="API keys and the role each grants.")
    session_secret_env: str = Field(
        "CXBOT_SESSION_SECRET",
        description=(
            "Environment variable holding the secret that signs customer session tokens; "
            "unset = a random secret per process (sessions end when the server restarts)."
        ),
    )
    session_ttl_s: int = Field(86400, gt=0, description="How long a session token is valid.")
    default_queue: str = Field(
        "general",
        description="Queue of a conversation the assistant still handles (handed over: its "
        "handoff queue).",
    )
    max_body_bytes: int = Field(16384, gt=0, description="Largest accepted request body.")
    cors_origins: tuple[str, ...] = Field(
        (),
        description=(
            "Origins allowed to call the API from a browser (widget pages); from the "
            "environment as a comma-separated list."
        ),
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):  # CXBOT_SERVER__CORS_ORIGINS=https://a.example,https://b…
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value


class ChannelConfig(_Section):
    """How replies are rendered on one channel (``Reply.rendered``)."""

    max_chars: int | None = Field(
        None, gt=20, description="Longest message part in characters; unset = no limit."
    )
    max_parts: int = Field(
        10,
        gt=0,
        description="Most parts a reply is split into; a longer reply is cut and ends with '…'.",
    )
    part_labels: bool = Field(
        False, description='Mark each part of a split reply with "(1/2)", "(2/2)"….'
    )
    format: Literal["markdown", "whatsapp", "plain"] = Field(
        "plain",
        description=(
            "Text formatting the channel shows: markdown (kept), whatsapp (*bold*, _italic_, "
            "• lists) or plain (all Markdown removed)."
        ),
    )
    links: bool = Field(
        True, description="Keep web addresses; false = say channels.site_name instead."
    )
    citations: bool = Field(
        False, description="Keep numbered citation markers such as [1] in the text."
    )
    buttons: int = Field(
        0,
        ge=0,
        description=(
            "Quick replies shown as buttons, at most this many; more options become a "
            "numbered list in the text; 0 = the channel has no buttons."
        ),
    )
    spoken: bool = Field(
        False,
        description=(
            "Write amounts, times, dates, percentages and card endings as a voice reads them "
            '("£1,250.50" → "1,250 pounds and 50 pence", "14:30" → "2:30 pm").'
        ),
    )
    ascii_punctuation: bool = Field(
        False,
        description=(
            "Replace typographic dashes, quotes, ellipses and bullets with plain characters "
            "(SMS: keeps a message in the GSM-7 alphabet, 160 characters a segment)."
        ),
    )


class ChannelsConfig(_Section):
    """The channels a customer may use and how each renders a reply."""

    site_name: str = Field(
        "our website",
        description="What a channel without links says instead of a web address.",
    )
    context_ttl_s: int = Field(
        86400,
        gt=0,
        description=(
            "How long a verified customer's latest conversation stays open to continue on "
            "another channel (a new conversation id with the same customer id)."
        ),
    )
    web: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig.model_validate(
            {"format": "markdown", "buttons": 10, "citations": True}
        ),
        description="Web chat widget: Markdown, links, citation markers, buttons.",
    )
    sms: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig.model_validate(
            {
                "max_chars": 160,
                "max_parts": 6,
                "part_labels": True,
                "links": False,
                "ascii_punctuation": True,
            }
        ),
        description="SMS: plain text, no links, 160-character parts labelled (1/2).",
    )
    whatsapp: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig.model_validate(
            {"max_chars": 4096, "part_labels": True, "format": "whatsapp", "buttons": 3}
        ),
        description="WhatsApp: its own formatting, links, up to 3 reply buttons.",
    )
    voice: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig.model_validate(
            {"max_chars": 600, "links": False, "spoken": True}
        ),
        description="Voice (text-to-speech): plain, spoken numbers and dates, no links.",
    )
    email: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig.model_validate({"max_parts": 1}),
        description="Email: the full text with links, no Markdown.",
    )


class IdentityConfig(_Section):
    """Who the assistant is talking to before it shares account data."""

    trust_customer_id: bool = Field(
        True,
        description=(
            "A customer id passed to respond() without `authenticated` counts as "
            "authenticated (the caller signed the customer in); false = it is a claim the "
            "customer must verify (date of birth and postcode) before account answers."
        ),
    )
    ask_customer_id: bool = Field(
        True,
        description=(
            "A session with no customer id (an anonymous web chat) asking about an account "
            "or starting a task for a customer is asked for the customer number (the "
            "profile id) and then check_fields, and becomes that customer's once verified; "
            "false = account questions get the public answer and such tasks the "
            "need_customer reply."
        ),
    )
    verification_ttl_s: int = Field(
        900, gt=0, description="How long a step-up verification lasts, in seconds."
    )
    max_attempts: int = Field(
        3,
        gt=0,
        description=(
            "Failed verifications (per conversation, and per customer within lockout_s) that "
            "lock verification and hand the conversation to a person."
        ),
    )
    lockout_s: int = Field(
        1800,
        gt=0,
        description="How long a customer stays locked out of verification after max_attempts.",
    )
    account_similarity: float = Field(
        0.6,
        ge=0,
        le=1,
        description=(
            "A first-person question this similar to a profile field's description "
            "(profiles.descriptions) asks about the account and needs a verified customer; "
            "higher than rag.profile_threshold so that how-to questions stay public."
        ),
    )
    check_fields: tuple[str, ...] = Field(
        ("date_of_birth", "postcode"),
        min_length=1,
        description=(
            "Profile fields asked for, in order (date_of_birth: any common date format; "
            "postcode: case and spaces ignored; anything else: compared case-insensitively)."
        ),
    )


class CxbotConfig(_Section):
    """The whole of ``cxbot.yaml``."""

    company: str = Field("Example Co", description="Company the assistant speaks for.")
    assistant_name: str = Field("Assistant", description="How the assistant names itself.")
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)  # type: ignore[arg-type]
    storage: StorageConfig = Field(default_factory=StorageConfig)  # type: ignore[arg-type]
    embeddings: EmbeddingConfig = Field(default_factory=EmbeddingConfig)  # type: ignore[arg-type]
    llm: LLMConfig = Field(default_factory=LLMConfig)  # type: ignore[arg-type]
    nlu: NLUConfig = Field(default_factory=NLUConfig)  # type: ignore[arg-type]
    rag: RAGConfig = Field(default_factory=RAGConfig)  # type: ignore[arg-type]
    profiles: ProfilesConfig = Field(default_factory=ProfilesConfig)  # type: ignore[arg-type]
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)  # type: ignore[arg-type]
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)  # type: ignore[arg-type]
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)  # type: ignore[arg-type]
    limits: LimitsConfig = Field(default_factory=LimitsConfig)  # type: ignore[arg-type]
    rasa: RasaConfig = Field(default_factory=RasaConfig)  # type: ignore[arg-type]
    server: ServerConfig = Field(default_factory=ServerConfig)  # type: ignore[arg-type]
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)  # type: ignore[arg-type]
    identity: IdentityConfig = Field(default_factory=IdentityConfig)  # type: ignore[arg-type]


def _apply_env(data: dict[str, Any], env: Mapping[str, str], path: Path) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        node: Any = data
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"environment variable {name} sets a key under '{key}', which is not a section",
                    file=path,
                )
            node = child
        node[keys[-1]] = None if value == "" else value


def load_config(root: str | Path, *, env: Mapping[str, str] | None = None) -> CxbotConfig:
    """Read and validate ``<root>/cxbot.yaml`` with ``CXBOT_…`` environment overrides."""
    root = Path(root)
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"no {CONFIG_FILE} in {root.resolve()}",
            file=path,
            fix="run `cxbot init DIR` to scaffold a project, or pass the project folder",
        )
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of sections", file=path, line=1)
    _apply_env(data, os.environ if env is None else env, path)
    config = load_yaml_model(path, CxbotConfig, data=data)
    _check_references(config, data, path)
    return config


def _check_references(config: CxbotConfig, data: Any, path: Path) -> None:
    """Names that point elsewhere must exist: guardrails by name."""
    import difflib

    from cxbot.guardrails.registry import available_guardrails, guardrail_names

    plugins = available_guardrails()
    stages: tuple[tuple[Literal["input", "output"], tuple[str, ...]], ...] = (
        ("input", config.guardrails.input),
        ("output", config.guardrails.output),
    )
    for stage, names in stages:
        known = guardrail_names(stage, plugins)
        for index, name in enumerate(names):
            if name in known:
                continue
            line = None
            with contextlib.suppress(KeyError, AttributeError, TypeError):
                line = data["guardrails"][stage].lc.item(index)[0] + 1
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"guardrails.{stage}: unknown guardrail '{name}'",
                file=path,
                line=line,
                fix=f"{hint}valid {stage} guardrails: {', '.join(known)}",
            )
