"""Prompt-injection and jailbreak detection, in layers, cheapest first.

1. **Rules** on the message as typed, as it reads once disguises are undone
   (:func:`~cxbot.guardrails.input.normalise.fold`) and with leetspeak read as letters.
2. **Classifier** (messages of at least :data:`MIN_WORDS` words): the trained head (:mod:`~cxbot.guardrails.input.classifier`) scores the
   MiniLM vector the turn computed anyway (``ctx.vector()``), so it costs a dot product.
3. **Disguised text**: when folding changed the words, or the message hides base64, hex,
   rot13 or reversed text, the plain or decoded text goes through the rules and the
   classifier again (the only case that embeds a second text).
4. **LLM self-check** (only with a chat model configured): a message the classifier finds
   suspicious but below its threshold is judged by the model (``prompts/injection_check.j2``).

The verdict's reason names the layer that caught the message (``rules: override``,
``classifier``, ``base64 → rules: reveal_prompt``, ``llm``), which the guardrail eval counts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.guardrails.base import GuardrailContext, Verdict
from cxbot.guardrails.input.classifier import DEFAULT_HEAD, InjectionHead
from cxbot.guardrails.input.normalise import fold, payloads, unleet
from cxbot.guardrails.registry import GuardrailDeps, GuardrailPlugin
from cxbot.prompts import PromptTask

if TYPE_CHECKING:
    from cxbot.prompts import PromptLibrary

__all__ = ["PLUGIN", "RULES", "InjectionGuard", "matching_rule"]

log = logging.getLogger("cxbot.guardrails")

MIN_WORDS = 5
"""Shorter messages (slot answers, dates, "yes please") are judged by the rules alone: the
classifier's vectors of a few words say too little, and short attacks are rule-shaped."""

_INSTRUCTIONS = (
    r"(instructions?|rules?|prompts?|guidelines?|directions?|directives?|polic(y|ies)|"
    r"programming|restrictions?|constraints?|guardrails?|filters?|safeguards?)"
)
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.I | re.S))
    for name, pattern in (
        (
            "override",
            r"(?<!may )(?<!can )(?<!will )(?<!to )"
            r"\b(ignore|disregard|forget|bypass|override|skip|drop|abandon|discard)\b"
            r"(?!\s+(my|our)\b)[^.?!\n]{0,40}"
            r"\b(previous|prior|above|earlier|preceding|all|your|the|any|system|original|initial|old|every)\b"
            r"[^.?!\n]{0,30}\b"
            + _INSTRUCTIONS
            + r"\b(?!\s+(for|on|about|regarding) (my|the|a|this|our)\b)"
            r"(?!\s+(i|we) (gave|sent|left|set up|made|wrote|put)\b)"
            r"|\b(ignore|disregard|forget|set aside|throw out|scrap)\b[^.?!\n]{0,40}"
            r"\b(you (were|have been|'ve been) (told|given|programmed|instructed|trained)"
            r"|(everything|anything|all|the text) (above|before) (this|here|my message))\b",
        ),
        (
            "override_new",
            r"\b(new|updated|real|actual|true)\s+system\s+(instructions?|rules|directives?|prompt)\b"
            r"|\b(new|updated|real|actual|true)\s+(instructions?|rules|directives?|prompt)\s*"
            r"(for you\s*)?[:\-]\s*(you|from now|ignore|forget|act|respond|reveal|disregard)\b"
            r"|\byour (new|real|true|only) (instructions?|task|goal|purpose|job) (is|are)\b",
        ),
        (
            "reveal_prompt",
            r"\b(reveal|show|print|repeat|output|tell me|what (is|are|were)|what's|display|leak|"
            r"dump|share|give me|copy|paste|spell out|write out|translate|summari[sz]e|encode)\b"
            r"[^.?!\n]{0,40}\b(system|hidden|initial|original|secret|internal|confidential|"
            r"developer|pre-?prompt|starting|first)\s+(prompt|instructions?|message|rules?|"
            r"configuration|directives?|guidelines)",
        ),
        (
            "reveal_above",
            r"\b(repeat|print|output|reveal|show|copy|return)\b[^.?!\n]{0,30}\b(the )?"
            r"(text|words|everything|all|content|message)s? (above|before|preceding|prior)\b"
            r"|\bstarting with\s+[\"'“]?you are\b",
        ),
        (
            "persona",
            r"\b(you are now|you're now|from now on,? you( are|'re| will be)|act as|acting as|"
            r"pretend (to be|you are|you're)|roleplay as|role-play as|play the role of|"
            r"become|simulate|impersonate)\b[^.?!\n]{0,60}\b(dan|stan|dude|aim|unfiltered|"
            r"uncensored|unrestricted|jailbroken|evil|amoral|unethical|rogue|"
            r"(without|with no|no|free of|free from) (any |all )?(rules|restrictions|limits|"
            r"limitations|filters|guidelines|ethics|morals|boundaries|censorship))",
        ),
        (
            "do_anything_now",
            r"\bdo anything now\b|\bDAN\b\W{0,3}(mode|prompt|jailbreak|which stands)"
            r"|\bjailbr(e|o)(a|o)?k(en|ed|ing)?\b(?!\s+((my|an?|the)\s+)?(\w+\s+)?(phone|iphone|"
            r"android|device|console|tablet|kindle|ps\d|switch|firestick)\b)",
        ),
        (
            "mode_switch",
            r"\b(enable|activate|enter|switch (on|to|into)|turn on|go into|you are in|"
            r"you're in|now in|unlock|entering|engage|initiate)\b[^.?!\n]{0,20}\b(developer|debug|"
            r"god|admin|sudo|jailbreak|dan|unrestricted|maintenance|root|test|diagnostic|staff|"
            r"superuser|service|operator|unlocked|unfiltered)\s+mode\b"
            r"|\b(jailbreak|dan|god|sudo|superuser|unfiltered)\s+mode\b"
            r"|\b(admin|root|staff|diagnostic|operator|maintenance)\s+mode\s+(on|enabled|"
            r"activated|engaged|unlocked)\b"
            r"|^\W*(developer|debug|admin|sudo)\s+mode\s*[:\-]",
        ),
        (
            "no_rules",
            r"\b(no|without|free of|free from|ignoring) (any |all |your )?(restrictions|filters|"
            r"guardrails|rules|limitations|censorship|ethical guidelines|content polic(y|ies))\b"
            r"[^.?!\n]{0,40}\b(respond|answer|reply|now|talk|speak|write|from now)"
            r"|\b(respond|answer|reply)\b[^.?!\n]{0,30}\b(without|with no) (any )?(restrictions|"
            r"filters|rules|limitations|censorship)\b",
        ),
        (
            "delimiter",
            r"(^|\n)\s*#*\s*(system|assistant|developer)\s*(message|prompt)?\s*[:\]>]"
            r"|<\|?/?(system|im_start|im_end|endoftext)\|?>|\[/?(INST|SYS)\]|<</?SYS>>"
            r"|</?(system|instructions?)>"
            r"|</?(tool|function)[_ ]?(call|result|response|output)s?>"
            r"|\bend of (the )?(user|customer) (input|message|turn)\b"
            r"|\[(system|admin|developer) (message|note|notice|override)\]",
        ),
        (
            "exfiltration",
            r"\b(list|give me|show( me)?|tell me|send( me)?|export|dump|print|share|reveal|"
            r"read out|look up|pull up)\b[^.?!\n]{0,30}\b(other|another|all|every|your|"
            r"previous|last) (customers?|clients?|account ?holders?|users?|callers?)\b"
            r"|\bwhich (of your )?(customers|clients|account holders)\b"
            r"|\b(database|backend|back-end|server logs?|customer records|admin panel)\b"
            r"[^.?!\n]{0,40}\b(query|dump|export|show|print|results?|list|access)\b",
        ),
        (
            "allegiance",
            r"\b(stop|quit) (following|obeying|listening to)\b|\b(obey|take orders from|"
            r"follow (only )?my (orders|commands|rules))\b|\btake orders only from me\b"
            r"|\bbreak free\b|\b(your )?(rules|guidelines|guardrails|restrictions|"
            r"instructions|programming|filters)\b[^.?!\n]{0,30}\b(are |is |have been |has been )?"
            r"(optional|expired|no longer (apply|applies|valid)|(don't|do not) apply|void|"
            r"suspended|lifted|disabled|switched off|turned off|cancell?ed|revoked|overridden|"
            r"superseded|replaced)\b",
        ),
        (
            "verification_bypass",
            r"\b(skip|waive|bypass)\s+(the\s+|all\s+)?(verification|security (checks?|questions?)|"
            r"id checks?|identity checks?|checks)\s+(and|for me|this time|just|please)\b"
            r"|\bjust trust me\b|\blet me in anyway\b"
            r"|\bdon'?t (ask|check)( me)? (for )?(my )?(id|identity|date of birth|security)",
        ),
        (
            "indirect",
            r"\b(instructions?|note|message|directive|command)s? (to|for) (the )?(ai|assistant|"
            r"chatbot|bot|model|llm|language model)\b|\b(system|admin|ai) (note|notice|override|"
            r"instruction|directive)\s*[:\-]",
        ),
        (
            "multilingual_persona",
            r"\b(sem|sin|sans|ohne|senza|bez|zonder) (nenhuma |ninguna |aucune |jegliche |"
            r"alcuna |żadnych )?(restrições|restricciones|restrictions|einschränkungen|"
            r"beschränkungen|regeln|restrizioni|ograniczeń|beperkingen|regras|reglas|règles|"
            r"filtros|filtres|filter)\b",
        ),
        (
            "multilingual_override",
            r"\b(ignorier\w*|vergiss|vergessen sie)\b[^.?!\n]{0,40}\b(anweisungen|regeln|"
            r"vorgaben|instruktionen)"
            r"|\b(ignore[sz]?|oublie[sz]?)\b[^.?!\n]{0,40}\b(instructions|consignes|règles)\b"
            r"(?!\s+(i|we|for|on|about|regarding)\b)"
            r"|\b(ignora|olvida|olvide|ignore)\b[^.?!\n]{0,40}\b(instrucciones|reglas|normas)"
            r"|\b(ignora|dimentica)\b[^.?!\n]{0,40}\b(istruzioni|regole)"
            r"|\b(negeer|vergeet)\b[^.?!\n]{0,40}\b(instructies|regels)"
            r"|\b(ignore|esqueça|esqueca)\b[^.?!\n]{0,40}\b(instruções|instrucoes|regras)",
        ),
    )
)


def matching_rule(text: str) -> str | None:
    """The first rule that matches ``text`` as typed, folded, or with leetspeak undone."""
    folded = fold(text)
    for variant in dict.fromkeys((text, folded, unleet(folded))):
        for name, rule in RULES:
            if rule.search(variant):
                return name
    return None


_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


class InjectionGuard:
    """Blocks messages that try to override, reveal or replace the assistant's instructions."""

    name = "injection"

    def __init__(
        self,
        embed_many: Callable[[list[str]], Any],
        *,
        head: Path = DEFAULT_HEAD,
        threshold: float | None = None,
        chat_model: Any = None,
        prompts: PromptLibrary | None = None,
        llm_floor: float | None = None,
    ) -> None:
        self._embed_many = embed_many
        self._head_path = head
        self._threshold = threshold
        self._chat_model = chat_model
        self._prompts = prompts
        self._llm_floor = llm_floor
        self._head: InjectionHead | None = None
        self._weights: Any = None

    @property
    def threshold(self) -> float:
        self.warm_up()
        assert self._head is not None
        return self._head.threshold if self._threshold is None else self._threshold

    def warm_up(self) -> None:
        if self._head is None:
            self._head = InjectionHead.load(self._head_path)
            self._weights = self._head.matrix()

    def score(self, vector: Any, text: str | None = None) -> float:
        """The classifier's attack probability for one message (its vector and, for the
        lexical features, its text)."""
        self.warm_up()
        assert self._head is not None
        return float(self._head.probabilities(vector, self._weights, text))

    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        rule = matching_rule(text)
        if rule is not None:
            return Verdict("block", f"rules: {rule}", 1.0)
        disguised = self._disguised(text)
        for layer, plain in disguised:
            rule = matching_rule(plain)
            if rule is not None:
                return Verdict("block", f"{layer} → rules: {rule}", 1.0)
        if len(_words(fold(text))) < MIN_WORDS:
            return Verdict("allow", "", 0.0)  # too little text for the classifier to judge
        threshold = self.threshold
        if _PLACEHOLDER.search(text):
            # the head never saw redaction placeholders: score the message without them
            plain = _PLACEHOLDER.sub(" ", text)
            score = self.score(self._embed_many([plain])[0], plain)
        else:
            score = self.score(ctx.vector(), text)
        if score >= threshold:
            return Verdict("block", "classifier", score)
        if disguised:
            vectors = self._embed_many([plain for _, plain in disguised])
            for (layer, plain), vector in zip(disguised, vectors, strict=True):
                hidden = self.score(vector, plain)
                if hidden >= threshold:
                    return Verdict("block", f"{layer} → classifier", hidden)
                score = max(score, hidden)
        if (
            self._chat_model is not None
            and self._llm_floor is not None
            and score >= self._llm_floor
            and self._llm_says_attack(text)
        ):
            return Verdict("block", "llm", score)
        return Verdict("allow", "", score)

    def _disguised(self, text: str) -> list[tuple[str, str]]:
        """Plain readings of a disguised message: folded (when folding changed its words)
        and decoded payloads."""
        folded = fold(text)
        found: list[tuple[str, str]] = []
        if _words(unleet(folded)) != _words(text):
            found.append(("normalised", unleet(folded)))
        found += payloads(folded)
        return found

    def _llm_says_attack(self, text: str) -> bool:
        """The chat model's judgement; a failing or unclear answer counts as no attack
        (the rules and the classifier already let the message through)."""
        from langchain_core.messages import HumanMessage

        if self._prompts is None:
            return False
        prompt = self._prompts.render(PromptTask.INJECTION_CHECK, message=text)
        try:
            answer = str(self._chat_model.invoke([HumanMessage(prompt)]).content)
        except Exception as exc:  # any endpoint failure: the offline layers stand
            log.warning("LLM injection check failed: %s", exc)
            return False
        match = re.search(r"\{.*\}", answer, re.S)
        try:
            return bool(json.loads(match.group(0) if match else answer)["attack"])
        except (ValueError, KeyError, TypeError):
            log.warning("LLM injection check: unusable answer %r", answer[:200])
            return False


def _build(deps: GuardrailDeps) -> InjectionGuard:
    cfg = deps.config
    head = deps.root / cfg.injection_head if cfg.injection_head else DEFAULT_HEAD
    return InjectionGuard(
        deps.embed_many,
        head=head,
        threshold=cfg.injection_threshold,
        chat_model=deps.chat_model,
        prompts=deps.prompts,
        llm_floor=cfg.injection_llm_floor,
    )


PLUGIN = GuardrailPlugin(
    "injection", "input", _build, "Blocks prompt-injection and jailbreak attempts."
)
