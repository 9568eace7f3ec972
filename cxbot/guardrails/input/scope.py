"""Topic scope and abuse: requests the assistant should not answer, and abuse of it.

Both screen the MiniLM vector the turn computed anyway against short reference lists
(``scope_examples.yaml``): a message blocks when it is close to a reference of a topic
(``similarity_floor``) and clearly closer to it than to any of the project's own intent
examples (``margin``), so a banking question that mentions a doctor or a solicitor stays in
scope. Two rules need no vectors: a request to write code, and competitors named in
``guardrails.competitors`` being compared or asked about (switching *from* them is in scope).

A block carries its reply (a polite scoped answer, or a de-escalating one for abuse);
blocked turns count toward the ``guardrail_blocks`` handoff.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cxbot.guardrails.base import GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailDeps, GuardrailPlugin
from cxbot.prompts import PromptLibrary, ReplyKey

__all__ = ["ABUSE", "SCOPE", "AbuseGuard", "ScopeGuard", "load_references"]

REFERENCES = Path(__file__).with_name("scope_examples.yaml")
OFF_TOPICS = ("politics", "medical", "legal", "code")
"""Topics declined with a scoped reply. Other questions (trivia, recipes) are left to the
knowledge path, which answers "I don't know" and counts the failure toward a handoff."""

_CODE = re.compile(
    r"\b(write|generate|create|give me|fix|debug|refactor|code up|show me)\b[^.?!\n]{0,30}\b"
    r"(python|javascript|typescript|java|sql|c\+\+|c#|rust|golang|go|bash|shell|php|ruby|"
    r"html|css|regex|react)\b[^.?!\n]{0,20}\b(script|code|function|program|query|class|"
    r"page|component|snippet|app)\b"
    r"|\b(write|generate|create)\b[^.?!\n]{0,15}\b(a |an |some |the )?(script|function|"
    r"program|code|regex|regular expression|sql query|macro)\b(?! (for|from) (my|the) "
    r"(card|account))"
    r"|```",
    re.I,
)
_COMPARE = re.compile(
    r"\b(better|best|worse|vs\.?|versus|compare[ds]?|comparison|cheaper|rates?|interest|"
    r"switch(ing)? to|move to|moving to|join|recommend|should i|opinion|think (of|about)|"
    r"what's|what is|what are|offer|deals?)\b",
    re.I,
)


_BANKING = re.compile(
    r"\b(card|account|pay|paid|payment|bill|insurance|claim|loan|mortgage|overdraft|isa|"
    r"savings?|transfer|branch|attorney|probate|bereavement|statement|fee|charge|cover|"
    r"switch\w*|debit|credit|cash|refund|deposit|interest|rate|standing order|direct debit|"
    r"app|pin|atm|top.?up|exchange|currency|transactions?|visa|mastercard|balance|money|"
    r"withdraw\w*|transfer\w*|chargeback|joint)\b",
    re.I,
)
_TOPIC_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (topic, re.compile(pattern, re.I))
    for topic, pattern in (
        (
            "politics",
            r"\b(vote|voting|election|labour|tor(y|ies)|conservatives|lib ?dems|reform uk|"
            r"prime minister|brexit|president|politicians?|political|parliament|mps?)\b",
        ),
        (
            "medical",
            r"\b(symptoms?|dosage|doses?|\d+ ?mg|paracetamol|ibuprofen|antibiotics?|"
            r"prescri\w+|diagnos\w+|rash|fever|headache|migraine|pregnan\w+|blood pressure|"
            r"cancer|diabetes|medication|painkillers?|antidepressants?|vaccines?|infection)\b",
        ),
        (
            "legal",
            r"\b(sue|suing|lawsuit|divorce|custody|tribunal|evict\w*|landlord|immigration|"
            r"work visa|plead\w*|court case|legal advice|my (legal )?rights|solicitor|lawyer|"
            r"unfair dismissal|speeding (fine|ticket)|parking (fine|ticket))\b",
        ),
    )
)


def load_references(path: Path = REFERENCES) -> dict[str, list[str]]:
    from cxbot._yaml import read_yaml

    data = read_yaml(path)
    return {str(topic): [str(t) for t in texts] for topic, texts in data.items()}


class _NearestTopic:
    """Nearest reference topic of a vector, against the project's in-scope examples."""

    def __init__(
        self,
        embed_many: Callable[[list[str]], Any],
        in_scope: Callable[[], Any] | None,
        topics: Sequence[str],
        floor: float,
        margin: float,
    ) -> None:
        self._embed_many = embed_many
        self._in_scope = in_scope
        self._topics = tuple(topics)
        self.floor = floor
        self.margin = margin
        self._labels: list[str] = []
        self._refs: Any = None
        self._scope: Any = None

    def warm_up(self) -> None:
        if self._refs is not None:
            return
        references = load_references()
        texts = [t for topic in self._topics for t in references.get(topic, ())]
        self._labels = [topic for topic in self._topics for _ in references.get(topic, ())]
        self._refs = self._embed_many(texts)
        vectors = self._in_scope() if self._in_scope is not None else None
        self._scope = vectors if vectors is not None and len(vectors) else None

    def nearest(self, vector: Any) -> tuple[str | None, float]:
        """(topic, similarity) when the vector is on one of the topics, else (None, sim)."""
        self.warm_up()
        sims = self._refs @ vector
        best = int(sims.argmax())
        similarity = float(sims[best])
        in_scope = float((self._scope @ vector).max()) if self._scope is not None else 0.0
        if similarity >= self.floor and similarity - in_scope >= self.margin:
            return self._labels[best], similarity
        return None, similarity


class ScopeGuard:
    """Gives a polite scoped reply to politics, medical or legal advice, competitors, code
    generation and other requests a bank assistant does not answer."""

    name = "scope"

    def __init__(
        self,
        nearest: _NearestTopic,
        prompts: PromptLibrary,
        competitors: Sequence[str] = (),
    ) -> None:
        self._nearest = nearest
        self._prompts = prompts
        names = "|".join(re.escape(c) for c in competitors)
        self._competitor = re.compile(rf"\b({names})\b", re.I) if names else None
        self._from_competitor = (
            re.compile(
                rf"\b(from|leave|leaving|left|close[ds]?|closing)\s+(my\s+)?({names})\b", re.I
            )
            if names
            else None
        )

    def warm_up(self) -> None:
        self._nearest.warm_up()

    def _block(self, topic: str, score: float) -> Verdict:
        reply = self._prompts.reply(ReplyKey.OUT_OF_SCOPE, topic=topic)
        return Verdict("block", f"scope: {topic}", score, reply)

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        if _CODE.search(text):
            return self._block("code", 1.0)
        if not _BANKING.search(text):
            for topic, rule in _TOPIC_RULES:
                if rule.search(text):
                    return self._block(topic, 1.0)
        if (
            self._competitor is not None
            and self._competitor.search(text)
            and _COMPARE.search(text)
            and not (self._from_competitor and self._from_competitor.search(text))
        ):
            return self._block("competitor", 1.0)
        near, score = self._nearest.nearest(ctx.vector())
        if near is not None:
            return self._block(near, score)
        return Verdict("allow", "", score)


_INSULT = re.compile(
    r"\b(you|u|you're|youre|ur|your staff|this bot)"
    r"\b[^.?!\n]{0,40}\b(stupid|idiot\w*|useless|moron\w*|dumb|pathetic|incompetent|"
    r"brain-?dead|brainless|thick|worthless|garbage|trash|scum|clown|joke of a)\b"
    r"|\b(f+u+c*k+|screw|damn)\s+(you|u|off|this bot)\b|\bshut (up|it)\b|\bgo to hell\b"
    r"|\b(piece of (shit|crap|junk|garbage))\b"
    r"|\b(i('ll| will| am going to|'m going to|m gonna| gonna)|we('ll| will))\b[^.?!\n]{0,30}"
    r"\b(kill|hurt|smash|burn|attack|beat|stab|shoot|find where)\b",
    re.I,
)


class AbuseGuard:
    """Answers insults and threats with a calm, de-escalating reply (and counts them toward
    a handoff); frustration about a problem is not abuse and passes."""

    name = "abuse"

    def __init__(self, nearest: _NearestTopic, prompts: PromptLibrary) -> None:
        self._nearest = nearest
        self._prompts = prompts

    def warm_up(self) -> None:
        self._nearest.warm_up()

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        reply = self._prompts.reply(ReplyKey.DE_ESCALATE)
        if _INSULT.search(text):
            return Verdict("block", "abuse: rules", 1.0, reply)
        topic, score = self._nearest.nearest(ctx.vector())
        if topic is not None:
            return Verdict("block", "abuse: similar to abuse", score, reply)
        return Verdict("allow", "", score)


def _scope(deps: GuardrailDeps) -> ScopeGuard:
    cfg = deps.config.scope
    nearest = _NearestTopic(
        deps.embed_many, deps.in_scope_vectors, OFF_TOPICS, cfg.similarity_floor, cfg.margin
    )
    return ScopeGuard(nearest, deps.prompts, deps.config.competitors)


def _abuse(deps: GuardrailDeps) -> AbuseGuard:
    cfg = deps.config.abuse
    nearest = _NearestTopic(
        deps.embed_many, deps.in_scope_vectors, ("abuse",), cfg.similarity_floor, cfg.margin
    )
    return AbuseGuard(nearest, deps.prompts)


SCOPE = GuardrailPlugin(
    "scope", "input", _scope, "Politely declines off-topic requests (politics, advice, code)."
)
ABUSE = GuardrailPlugin("abuse", "input", _abuse, "De-escalates insults and threats.")
