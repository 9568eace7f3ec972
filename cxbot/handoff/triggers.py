"""Handoff triggers: pure functions over the turn's understanding, the customer's message,
the conversation state, the config and the clock. Each returns a reason (or a topic, a
queue, an opening time) or ``None``; nothing here has side effects or reads a store.

The sentiment scorer is a small offline lexicon (no model): frustration and anger words,
profanity, "useless", repeated exclamation marks and shouting in capitals count against,
thanks and praise count for; a negation flips the word after it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, get_args

from cxbot.conversation.state import ConversationState
from cxbot.types import NLUResult

if TYPE_CHECKING:
    from cxbot.config import BusinessHoursConfig, HandoffConfig

__all__ = [
    "HANDOFF_REASONS",
    "HUMAN_INTENT",
    "HandoffReason",
    "Opening",
    "Sentiment",
    "SentimentLabel",
    "asks_for_person",
    "customer_asked",
    "customer_request",
    "guardrail_blocks",
    "low_confidence",
    "negative_sentiment",
    "opening",
    "policy_topic",
    "repeated_failure",
    "score_sentiment",
    "select_queue",
    "unsure",
]

HandoffReason = Literal[
    "customer_request",
    "repeated_failure",
    "low_confidence",
    "negative_sentiment",
    "guardrail_blocks",
    "flow_retries",
    "policy_topic",
    "verification_failed",
]
HANDOFF_REASONS: tuple[HandoffReason, ...] = get_args(HandoffReason)
HUMAN_INTENT = "human_agent"

# -- explicit request ---------------------------------------------------------------------
_PERSON = (
    r"(an?|the|your|real|live|human|actual|proper|customer service|customer services)\s+"
    r"(agent|advisor|adviser|representative|rep|operator|person|human|being|colleague)"
)
_REQUEST = re.compile(
    "|".join(
        (
            # "get me an agent", "talk to a real person", "connect me with a colleague"
            r"\b(speak|talk|chat|connect|transfer|put|pass|get|give)\b[\w\s']{0,25}?\b"
            r"(to|with|me)\s+(someone|somebody|a person|a human|a manager|"
            + _PERSON
            + r"|an? (real|live|actual) (one|person))\b",
            r"\b(real|actual|live)\s+(person|human|people|agent)\b",
            r"\b(i want|i need|i'd like|i would like|can i have|can i get|give me|get me)"
            r"\s+(a |an )?(human|person|agent|representative|operator|manager)\b",
            r"\b(human|live)\s+(agent|support|operator|representative)\b",
            r"\b(representative|operator)\b(?!\s+(error|fees?|of))",
            r"\b(call me|ring me|phone me)( back)?\b",
            r"\b(don't|do not) want (a |to talk to a |to speak to a )?"
            r"(bot|chatbot|machine|robot)\b",
            r"^\W*(agent|human|representative|operator|person)\W*(please|now|pls)?\W*$",
        )
    ),
    re.IGNORECASE,
)
_NOT_A_REQUEST = re.compile(
    r"\b(estate|travel|letting|insurance|mortgage|booking|secret|travel)\s+agents?\b"
    r"|\bhuman (error|rights|resources|nature|race)\b"
    r"|\bagent (banking|number|code)\b",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    """The message asks for a person in so many words (word-boundary phrase rules:
    "agent", "real person", "speak to someone", "representative", "call me"…), and not
    about an estate agent or a human error."""
    cleaned = _NOT_A_REQUEST.sub(" ", text)
    return _REQUEST.search(cleaned) is not None


def customer_asked(nlu: NLUResult) -> bool:
    """The intent classifier says the customer asked for a person."""
    return nlu.intent == HUMAN_INTENT


def customer_request(
    nlu: NLUResult | None, text: str, config: HandoffConfig
) -> HandoffReason | None:
    """``customer_request`` when the intent is ``human_agent``, or when the classifier
    recognised no intent and the phrase rule fires ("can I come in and talk to someone about
    a mortgage?" is a booking the assistant can make, not a request for a person)."""
    if nlu is not None and customer_asked(nlu):
        return "customer_request"
    recognised = nlu is not None and nlu.intent is not None
    if config.request_phrases and not recognised and asks_for_person(text):
        return "customer_request"
    return None


# -- policy topics ------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _phrase(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)


_PROCESS_QUESTION = re.compile(
    r"^\W*(how (do|can|would|should|long)|where (do|can|should)|who (do|should)|"
    r"what('s| is| are) (the|your) (process|procedure|steps)|"
    r"what (happens|should i do) (if|when))\b",
    re.IGNORECASE,
)
"""A question about how something works ("How do I make a complaint?"): answered from the
knowledge, not handed over, even when it names a policy topic."""


def policy_topic(nlu: NLUResult | None, text: str, config: HandoffConfig) -> str | None:
    """The policy topic (complaint, bereavement, fraud…) the message is about, if any; a
    question about the process is about none."""
    normalised = text.replace("\u2019", "'")
    if _PROCESS_QUESTION.search(normalised):
        return None
    for name, topic in config.policy_topics.items():
        if nlu is not None and nlu.intent is not None and nlu.intent in topic.intents:
            return name
        if any(_phrase(p).search(normalised) for p in topic.phrases):
            return name
    return None


# -- failure, confidence, blocks -----------------------------------------------------------
def repeated_failure(state: ConversationState, max_failed_turns: int) -> bool:
    """The assistant failed ``max_failed_turns`` turns in a row (state after this turn)."""
    return state.failed_turns >= max_failed_turns


def unsure(nlu: NLUResult | None, state: ConversationState, config: HandoffConfig) -> bool:
    """The classifier did not understand this turn: its confidence in what it decided
    (an intent, or a question for the knowledge base, which carries no intent) is below
    ``low_confidence``. Only outside a flow: a flow's slot answers ("Friday") carry no
    intent, and flows count their own retries."""
    if nlu is None or state.flow is not None:
        return False
    return nlu.confidence < config.low_confidence


def low_confidence(state: ConversationState, config: HandoffConfig) -> HandoffReason | None:
    """``low_confidence`` after ``low_confidence_turns`` not-understood turns in a row."""
    return "low_confidence" if state.unsure_turns >= config.low_confidence_turns else None


def guardrail_blocks(state: ConversationState, config: HandoffConfig) -> HandoffReason | None:
    """``guardrail_blocks`` once ``max_blocked_turns`` messages of the conversation were blocked."""
    return "guardrail_blocks" if state.blocked_turns >= config.max_blocked_turns else None


# -- sentiment ----------------------------------------------------------------------------
SentimentLabel = Literal["negative", "neutral", "positive"]


@dataclass(frozen=True, slots=True)
class Sentiment:
    """A message's lexicon score: below zero negative, above zero positive."""

    score: float
    label: SentimentLabel


_NEGATIVE_WORDS = {
    # frustration and anger
    "frustrated": 1.5,
    "frustrating": 1.5,
    "annoyed": 1.0,
    "annoying": 1.0,
    "irritated": 1.0,
    "angry": 2.0,
    "furious": 2.5,
    "livid": 2.5,
    "fuming": 2.5,
    "outraged": 2.5,
    "disgusted": 2.0,
    "disgusting": 2.0,
    "upset": 1.0,
    "fed up": 2.0,
    "sick of": 2.0,
    "had enough": 2.0,
    "unbelievable": 1.5,
    "unacceptable": 2.0,
    "appalling": 2.0,
    "shocking": 1.5,
    "disgrace": 2.0,
    "disgraceful": 2.0,
    "hopeless": 2.0,
    # the assistant or the bank is no good
    "useless": 2.0,
    "ridiculous": 2.0,
    "pathetic": 2.0,
    "rubbish": 1.5,
    "terrible": 1.5,
    "awful": 1.5,
    "horrible": 1.5,
    "worst": 2.0,
    "incompetent": 2.0,
    "stupid": 1.5,
    "pointless": 1.5,
    "waste of time": 2.0,
    "a joke": 1.5,
    "nonsense": 1.5,
    "hate": 2.0,
    "not helping": 1.5,
    "no help": 1.5,
    "going round in circles": 2.0,
    "doesn't understand": 1.5,
    "don't understand me": 1.5,
    "still waiting": 1.0,
    # profanity (mild to strong)
    "damn": 1.5,
    "bloody": 1.5,
    "crap": 2.0,
    "wtf": 2.5,
    "hell": 1.0,
    "shit": 2.5,
    "fucking": 3.0,
    "fuck": 3.0,
    "bullshit": 3.0,
    "screw this": 2.5,
}
_POSITIVE_WORDS = {
    "thanks": 1.0,
    "thank you": 1.0,
    "great": 1.0,
    "perfect": 1.0,
    "brilliant": 1.0,
    "helpful": 1.0,
    "lovely": 1.0,
    "excellent": 1.0,
    "amazing": 1.0,
    "appreciate": 1.0,
    "happy": 1.0,
    "good": 0.5,
    "cheers": 0.5,
}
_NEGATIONS = re.compile(r"\b(not|never|no|isn't|wasn't|aren't|don't|didn't|hardly)\s+$", re.I)
_ACRONYMS = {"PIN", "ISA", "ISAS", "ATM", "UK", "CHAPS", "BACS", "IBAN", "BIC", "SWIFT", "ID", "OK"}


def _lexicon(words: dict[str, float]) -> re.Pattern[str]:
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in ordered) + r")\b", re.I)


_NEG_RE = _lexicon(_NEGATIVE_WORDS)
_POS_RE = _lexicon(_POSITIVE_WORDS)


def score_sentiment(text: str) -> Sentiment:
    """The lexicon score of one message (no model: the same message always scores the same)."""
    text = text.replace("\u2019", "'")
    score = 0.0
    for match in _NEG_RE.finditer(text):
        weight = _NEGATIVE_WORDS[match.group(1).lower()]
        score += weight / 2 if _NEGATIONS.search(text[: match.start()]) else -weight
    for match in _POS_RE.finditer(text):
        weight = _POSITIVE_WORDS[match.group(1).lower()]
        score += -weight if _NEGATIONS.search(text[: match.start()]) else weight
    if re.search(r"[!?]*![!?]*![!?]*!", text):  # three or more exclamation marks in a row
        score -= 1.5
    shouted = [w for w in re.findall(r"\b[A-Z]{3,}\b", text) if w not in _ACRONYMS]
    letters = [c for c in text if c.isalpha()]
    if len(shouted) >= 2 or (
        len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7
    ):
        score -= 1.5
    score = round(max(-5.0, min(5.0, score)), 2)
    label: SentimentLabel = "negative" if score < 0 else "positive" if score > 0 else "neutral"
    return Sentiment(score, label)


def negative_sentiment(scores: Sequence[float], config: HandoffConfig) -> HandoffReason | None:
    """``negative_sentiment`` when the last ``negative_turns`` messages were all negative
    or the last three add up to ``negative_sum`` or less (scores oldest first, this turn's
    last)."""
    recent = list(scores)[-config.negative_turns :]
    if len(recent) >= config.negative_turns and all(s < 0 for s in recent):
        return "negative_sentiment"
    if scores and sum(list(scores)[-3:]) <= config.negative_sum:
        return "negative_sentiment"
    return None


# -- business hours and queues ------------------------------------------------------------
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Opening:
    """Whether colleagues are in at ``now``, and if not, when they next are (local time)."""

    open: bool
    next_open: datetime | None = None

    def describe(self, now: datetime) -> str:
        """ "today at 09:00", "tomorrow at 09:00" or "on Monday at 09:00"."""
        if self.next_open is None:
            return "as soon as possible"
        if now.tzinfo is not None and self.next_open.tzinfo is not None:
            now = now.astimezone(self.next_open.tzinfo)
        days = (self.next_open.date() - now.date()).days
        when = "today" if days == 0 else "tomorrow" if days == 1 else f"on {self.next_open:%A}"
        if days > 6:
            when = f"on {self.next_open:%A %-d %B}"
        return f"{when} at {self.next_open:%H:%M}"


def _local(now: datetime, hours: BusinessHoursConfig) -> datetime:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(hours.timezone)
    return now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)


def _span(hours: BusinessHoursConfig, day: date) -> tuple[time, time] | None:
    if day in hours.holidays:
        return None
    span = hours.weekly.get(_DAYS[day.weekday()])  # type: ignore[call-overload]
    if span is None:
        return None
    start, end = span.split("-")
    close = time.max if end == "24:00" else time.fromisoformat(end)
    return time.fromisoformat(start), close


def opening(now: datetime, hours: BusinessHoursConfig | None) -> Opening:
    """Whether ``now`` is inside the business hours (always, without hours configured)."""
    if hours is None:
        return Opening(True)
    local = _local(now, hours)
    today = _span(hours, local.date())
    if today is not None and today[0] <= local.time().replace(tzinfo=None) < today[1]:
        return Opening(True)
    for ahead in range(0, 15):
        day = local.date() + timedelta(days=ahead)
        span = _span(hours, day)
        if span is None:
            continue
        start = datetime.combine(day, span[0], tzinfo=local.tzinfo)
        if start > local:
            return Opening(False, start)
    return Opening(False, None)


def select_queue(
    config: HandoffConfig,
    reason: HandoffReason,
    *,
    topic: str | None = None,
    intent: str | None = None,
    after_hours: bool = False,
) -> str:
    """The queue of a handoff: the after-hours queue outside hours (if configured), else
    ``queues`` by policy topic, then reason, then intent, else the default queue."""
    if after_hours and config.hours is not None and config.hours.after_hours_queue:
        return config.hours.after_hours_queue
    for key in (topic, reason, intent):
        if key is not None and key in config.queues:
            return config.queues[key]
    return config.queue
