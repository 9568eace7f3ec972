"""Groundedness: every factual sentence of a knowledge answer must be supported by the
passages it cites.

The check runs on replies that carry passages (``GuardrailContext.passages``, set by the
pipeline for RAG answers only; flow prompts, small talk and handoff replies are not
checked). Each factual sentence of the reply (questions and sentences without content
words are not claims) is judged on its own:

- **verbatim** — the sentence is a run of words of a passage (an extractive answer): it
  is supported and costs no embedding;
- **numbers** — every amount, percentage, time, date and count in the sentence must appear
  in a passage (digits or number words): a changed number is unsupported;
- **words** — content words (stemmed) of the sentence that no passage has, capitalised
  names counted double: a wrong product name or an invented condition adds new words;
- **meaning** — the cosine similarity of the sentence to the closest passage sentence
  (MiniLM; passage sentence vectors are cached across turns, as passages repeat).

Offline, a sentence is unsupported when a number is missing or its risk
(``novel words - similarity weight * similarity``) is above the threshold. With a chat
model configured and ``guardrails.grounding.judge: llm``, the model judges the sentences
the offline check did not take verbatim (``prompts/grounding_judge.j2``), and a failing
endpoint falls back to the offline verdicts. ``guardrails.grounding.nli_model`` names a
local cross-encoder (NLI) folder; when it is missing the offline check is used.

Verdict: all supported → allow; some unsupported → rewrite without them when what remains
still holds at least one claim and at most ``max_unsupported`` of the claims were removed;
otherwise → block with the ``ungrounded`` reply of ``prompts/replies.yaml``.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cxbot.guardrails.base import ALLOW, GuardrailContext, Verdict
from cxbot.guardrails.registry import GuardrailDeps, GuardrailPlugin

if TYPE_CHECKING:
    from cxbot.embeddings import Matrix, Vector
    from cxbot.prompts import PromptLibrary

__all__ = ["GroundingGuard", "GroundingSettings", "SentenceSupport", "split_sentences"]

log = logging.getLogger("cxbot.guardrails")

JudgeMode = Literal["offline", "llm"]

_SENTENCE = re.compile(r"(?<=[.!?:])(?:\s*\[\d+\])*\s+(?!\[\d)(?=[\"'(\[]?[A-Z0-9£$€])|\n+")
_MARKERS = re.compile(r"\s*\[\d+\]")
_TOKEN = re.compile(r"[a-z0-9£$€%]+(?:[.,:'\u2019][a-z0-9]+)*", re.I)
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,:]\d+)*(?:st|nd|rd|th)?(?![A-Za-z])")
_UNITS = frozenset(
    """second minute hour day week month year time character digit device payment advisor topic
    branch transaction working""".split()  # noqa: SIM905
)
"""Words after a number that say what it counts: "3 years" is not "3 months"."""
_ADDRESS = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[a-z][\w-]*(?:\.[\w-]+)*\.[a-z]{2,}\b(?:/[\w/-]*)?"
)
"""Email and web addresses: like numbers, they must appear in a passage as written."""
_CAPITAL = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][A-Za-z]+")
_NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "sixty": "60", "ninety": "90", "hundred": "100", "third": "3", "fourth": "4",
    "fifth": "5", "twice": "2", "quarterly": "3", "fortnightly": "14",
}  # fmt: skip
"""Number words compared as digits ("one", "first" and "once" are left out: they are as
often pronouns or order words as counts)."""
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't
    do does doesn't doing don't down during each either even ever every few for from further
    get gets getting give given gives go goes going got had hadn't has hasn't have haven't
    having he her here hers herself him himself his how however i i'd i'll i'm i've if in
    into is isn't it it's its itself just let let's like make makes may me might more most
    much must my myself need needs no nor not now of off on once one only or other otherwise
    our ours ourselves out over own per please same shall she should shouldn't simply so
    some such than that that's the their theirs them themselves then there there's these
    they they'll they're this those through to too under until up upon us use used using
    very via want was wasn't we we'd we'll we're we've were weren't what what's when where
    whether which while who whom whose why will with within without won't would wouldn't yes
    yet you you'd you'll you're you've your yours yourself yourselves also still well sure
    already always usually normally just quite really either both instead""".split()  # noqa: SIM905
)
_GENERIC = frozenset(
    """able help happy note check see find know look let mean means ask asking thing things way
    ways time times able option options available simply easily quick quickly""".split()  # noqa: SIM905
)
"""Words an answer may add to a passage without adding a claim."""


def _stem(word: str) -> str:
    word = word.lower().replace("\u2019", "'")
    for suffix in ("'s", "s'", "'"):
        if word.endswith(suffix):
            word = word[: -len(suffix)]
    for suffix, repl in (
        ("ies", "y"),
        ("ied", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
        ("ly", ""),
    ):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)] + repl
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


_UNIT_STEMS = frozenset(_stem(u) for u in _UNITS)


def _number(raw: str) -> str:
    value = re.sub(r"(st|nd|rd|th)$", "", raw.replace(",", ""))
    if re.fullmatch(r"\d+\.0+", value):
        value = value.split(".")[0]
    return value.lstrip("0") or "0"


def _numbers(text: str) -> set[str]:
    found = set()
    for raw in _NUMBER.findall(text):
        value = _number(raw)
        found.add(value)
        if ":" in value:  # a time: 08:00 is also the hour 8
            found.add(value.split(":")[0].lstrip("0") or "0")
    for token in re.findall(r"[a-z]+", text.lower()):
        if token in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[token])
    return found


def _sequence(text: str) -> list[str]:
    """Content stems and numbers in order (stop words left out)."""
    out = []
    for word in _words(text):
        number = _NUMBER.search(word)
        if number is not None:
            out.append(_number(number.group(0)))
        elif word in _NUMBER_WORDS:
            out.append(_NUMBER_WORDS[word])
        elif word not in _STOPWORDS and word not in _GENERIC and len(word) > 2:
            out.append(_stem(word))
    return out


def _words(text: str) -> list[str]:
    return [t.lower().replace("\u2019", "'") for t in _TOKEN.findall(text)]


def _content(text: str) -> set[str]:
    return {
        _stem(w)
        for w in _words(text)
        if w not in _STOPWORDS
        and w not in _GENERIC
        and not w[0].isdigit()
        and w not in _NUMBER_WORDS
        and len(w) > 2
    }


def split_sentences(text: str) -> list[tuple[str, str]]:
    """The reply's sentences as ``(sentence, what follows it)``: joining every pair gives
    the text back, so a sentence can be removed with its citation markers and spacing."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for match in _SENTENCE.finditer(text):
        pieces.append((text[start : match.start()], text[match.start() : match.end()]))
        start = match.end()
    if start < len(text):
        pieces.append((text[start:], ""))
    return [(s, gap) for s, gap in pieces if s.strip() or gap]


def _passage_sentences(passage: str) -> list[str]:
    from cxbot.rag.answer import passage_sentences

    return passage_sentences(passage)


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    """How one sentence of a reply stands against the cited passages."""

    sentence: str
    claim: bool
    """False for questions and sentences with no content word or number (not checked)."""
    verbatim: bool = False
    missing_numbers: tuple[str, ...] = ()
    """Numbers (or number-unit pairs such as "3 year") that no passage has."""
    novel_words: tuple[str, ...] = ()
    novel_pairs: float = 0.0
    """Share of the sentence's adjacent content-word pairs that no passage has."""
    similarity: float = 1.0
    risk: float = 0.0
    supported: bool = True
    judged_by: str = "offline"


@dataclass(frozen=True, slots=True)
class GroundingSettings:
    """Weights and thresholds of the offline check and of the verdict.

    ``risk = word_weight * novel words (names * capital_weight) + pair_weight * novel pair
    share - similarity_weight * similarity + bias``; a claim with risk above 0 is
    unsupported. The defaults were fitted on the ``tune`` half of
    ``evals/northwind/grounding/cases.jsonl`` and checked on its ``test`` half.
    """

    word_weight: float = 1.0
    capital_weight: float = 2.0
    pair_weight: float = 6.0
    similarity_weight: float = 2.6
    bias: float = -3.3
    max_unsupported: float = 0.5
    """Above this share of unsupported claims the whole answer is replaced."""
    judge: JudgeMode = "offline"
    nli_model: str | None = None

    def risk(self, novel: float, pairs: float, similarity: float) -> float:
        return (
            self.word_weight * novel
            + self.pair_weight * pairs
            - self.similarity_weight * similarity
            + self.bias
        )


@dataclass(slots=True)
class _Passages:
    """The cited passages of a turn, prepared once: words, numbers, pairs, sentences."""

    text: str
    numbers: set[str]
    words: set[str]
    pairs: set[tuple[str, str]]
    raw_sentences: list[str]
    quotes: frozenset[tuple[str, ...]] = frozenset()
    """The words of each passage sentence (an extractive answer joins list items)."""


class GroundingGuard:
    """Removes the sentences of a knowledge answer its cited passages do not support, or
    replaces the answer with a safe reply when too little of it is supported."""

    name = "grounding"

    def __init__(
        self,
        embed_many: Callable[[list[str]], Any],
        *,
        fallback: str,
        settings: GroundingSettings | None = None,
        chat_model: Any = None,
        prompts: PromptLibrary | None = None,
        cache_size: int = 4096,
    ) -> None:
        self._embed_many = embed_many
        self.fallback = fallback
        self.settings = settings or GroundingSettings()
        self.chat_model = chat_model if self.settings.judge == "llm" else None
        self.prompts = prompts
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._passages: OrderedDict[str, _Passages] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._nli: Any = None
        self.failures: list[str] = []
        """Judge errors answered offline instead (most recent last)."""

    def warm_up(self) -> None:
        """Load the cross-encoder when one is configured and present (else: offline)."""
        path = self.settings.nli_model
        if path is None or self._nli is not None:
            return
        if not Path(path).is_dir():
            log.warning("grounding: no cross-encoder at %s; the offline check is used", path)
            return
        from sentence_transformers import CrossEncoder

        self._nli = CrossEncoder(path, device="cpu", local_files_only=True)

    # -- the check -----------------------------------------------------------------------
    def check(self, text: str, ctx: GuardrailContext) -> Verdict:
        if not ctx.passages:
            return ALLOW
        pieces = split_sentences(text)
        supports = self.assess([s for s, _ in pieces], ctx.passages)
        claims = [s for s in supports if s.claim]
        unsupported = [s for s in claims if not s.supported]
        if not unsupported:
            return ALLOW
        share = round(len(unsupported) / len(claims), 4)
        reason = "; ".join(_describe(s) for s in unsupported)
        if share > self.settings.max_unsupported or len(unsupported) == len(claims):
            return Verdict(
                "block", f"answer not supported by its passages: {reason}", share, self.fallback
            )
        kept = _without(pieces, supports)
        return Verdict("rewrite", f"unsupported sentences removed: {reason}", share, kept)

    def assess(self, sentences: Sequence[str], passages: Sequence[str]) -> list[SentenceSupport]:
        """Each sentence's support by ``passages`` (offline, or by the judge when set)."""
        prepared = [self._prepared(p) for p in passages]
        results = [self._lexical(s, prepared) for s in sentences]
        open_ = [i for i, r in enumerate(results) if r.claim and not r.verbatim]
        if not open_:
            return results
        if self.chat_model is not None and self.prompts is not None:
            judged = self._judge([results[i].sentence for i in open_], passages)
            if judged is not None:
                for i, ok in zip(open_, judged, strict=True):
                    results[i] = _replace(results[i], supported=ok, judged_by="llm")
                return results
        if self._nli is not None:
            return self._entailed(results, open_, passages)
        passage_vectors = self._vectors([t for p in prepared for t in p.raw_sentences])
        vectors = self._vectors([_clean(results[i].sentence) for i in open_])
        sims = vectors @ passage_vectors.T
        for row, i in enumerate(open_):
            results[i] = self._decide(results[i], float(sims[row].max()))
        return results

    # -- offline parts -------------------------------------------------------------------
    def _prepared(self, passage: str) -> _Passages:
        """``passage`` read for the checks, from a cache: turns cite the same passages."""
        with self._lock:
            cached = self._passages.get(passage)
            if cached is not None:
                self._passages.move_to_end(passage)
                return cached
        prepared = self._prepare(passage)
        with self._lock:
            self._passages[passage] = prepared
            while len(self._passages) > self._cache_size // 8:
                self._passages.popitem(last=False)
        return prepared

    def _prepare(self, passage: str) -> _Passages:
        sentences = _passage_sentences(passage) or [passage]
        flat = " ".join(_words(passage + "\n" + "\n".join(sentences)))
        sequence = _sequence(passage)
        return _Passages(
            text=f" {flat} {passage.lower()} ",
            numbers=_numbers(passage),
            words=set(sequence),
            pairs=set(itertools.pairwise(sequence)),
            raw_sentences=sentences,
            quotes=frozenset(tuple(_words(x)) for x in sentences),
        )

    def _lexical(self, sentence: str, passages: list[_Passages]) -> SentenceSupport:
        clean = _clean(sentence)
        sequence = _sequence(clean)
        if clean.endswith(("?", ":")) or not sequence:  # a question or an introduction
            return SentenceSupport(sentence, claim=False)
        joined = f" {' '.join(_words(clean))} "
        if any(joined in p.text for p in passages) or _quoted(_words(clean), passages):
            return SentenceSupport(sentence, claim=True, verbatim=True)
        numbers = set().union(*(p.numbers for p in passages))
        words = set().union(*(p.words for p in passages))
        pairs = set().union(*(p.pairs for p in passages))
        missing = sorted(_numbers(clean) - numbers)
        missing += [
            a for a in _ADDRESS.findall(clean.lower()) if all(a not in p.text for p in passages)
        ]
        sentence_pairs = list(itertools.pairwise(sequence))
        missing += [
            f"{a} {b}"
            for a, b in sentence_pairs
            if a[0].isdigit() and b in _UNIT_STEMS and (a, b) not in pairs and a in numbers
        ]
        novel = tuple(sorted({w for w in sequence if w not in words and not w[0].isdigit()}))
        novel_pairs = (
            sum(p not in pairs for p in sentence_pairs) / len(sentence_pairs)
            if sentence_pairs
            else 0.0
        )
        return SentenceSupport(
            sentence,
            claim=True,
            missing_numbers=tuple(missing),
            novel_words=novel,
            novel_pairs=round(novel_pairs, 4),
            similarity=0.0,
        )

    def _decide(self, support: SentenceSupport, similarity: float) -> SentenceSupport:
        settings = self.settings
        capitals = {_stem(w) for w in _CAPITAL.findall(_clean(support.sentence))}
        novel = sum(settings.capital_weight if w in capitals else 1.0 for w in support.novel_words)
        risk = settings.risk(novel, support.novel_pairs, similarity)
        supported = not support.missing_numbers and risk <= 0
        return _replace(
            support, similarity=round(similarity, 4), risk=round(risk, 4), supported=supported
        )

    def _vectors(self, texts: list[str]) -> Matrix:
        import numpy as np

        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            computed = np.asarray(self._embed_many(missing), dtype=np.float32)
            with self._lock:
                for text, vector in zip(missing, computed, strict=True):
                    self._cache[text] = vector
        with self._lock:
            rows = [self._cache[t] for t in texts]
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)

    # -- a judge -------------------------------------------------------------------------
    def _judge(self, sentences: list[str], passages: Sequence[str]) -> list[bool] | None:
        """The chat model's verdict per sentence, or ``None`` when it fails or answers
        something else than the JSON asked for (the offline check decides then)."""
        from langchain_core.messages import HumanMessage

        from cxbot.prompts import PromptTask

        assert self.prompts is not None and self.chat_model is not None
        prompt = self.prompts.render(
            PromptTask.GROUNDING_JUDGE,
            passages=[{"n": i + 1, "text": p} for i, p in enumerate(passages)],
            sentences=[{"n": i + 1, "text": _clean(s)} for i, s in enumerate(sentences)],
        )
        try:
            message = self.chat_model.invoke([HumanMessage(prompt)])
            return _parse_judgement(str(message.content), len(sentences))
        except Exception as exc:  # the endpoint failing must not lose the turn
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return None

    def _entailed(
        self, results: list[SentenceSupport], open_: list[int], passages: Sequence[str]
    ) -> list[SentenceSupport]:
        """Cross-encoder NLI: a sentence is supported when some passage entails it."""
        pairs = [(p, _clean(results[i].sentence)) for i in open_ for p in passages]
        scores = self._nli.predict(pairs, apply_softmax=True)
        labels = [str(v).lower() for v in self._nli.config.id2label.values()]
        entail = labels.index("entailment") if "entailment" in labels else len(labels) - 1
        for row, i in enumerate(open_):
            best = max(float(scores[row * len(passages) + k][entail]) for k in range(len(passages)))
            ok = best >= 0.5 and not results[i].missing_numbers
            results[i] = _replace(
                results[i], similarity=round(best, 4), supported=ok, judged_by="nli"
            )
        return results


def _parse_judgement(content: str, count: int) -> list[bool] | None:
    """``{"unsupported": [n, …]}`` (numbers of the unsupported sentences) → one bool per
    sentence, True = supported; ``None`` for anything else."""
    match = re.search(r"\{.*\}", content, re.S)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    numbers = data.get("unsupported") if isinstance(data, dict) else None
    if not isinstance(numbers, list) or not all(isinstance(n, int) for n in numbers):
        return None
    bad = {n for n in numbers if 1 <= n <= count}
    return [n not in bad for n in range(1, count + 1)]


def _quoted(words: list[str], passages: list[_Passages]) -> bool:
    """Whether ``words`` are whole passage sentences one after another (an extractive
    answer runs list items together without a full stop)."""
    quotes = set().union(*(p.quotes for p in passages))
    lengths = sorted({len(q) for q in quotes}, reverse=True)
    at = 0
    while at < len(words):
        step = next((n for n in lengths if tuple(words[at : at + n]) in quotes), 0)
        if not step:
            return False
        at += step
    return bool(words)


def _clean(sentence: str) -> str:
    return _MARKERS.sub("", sentence).replace("**", "").strip()


def _replace(support: SentenceSupport, **changes: Any) -> SentenceSupport:
    from dataclasses import replace

    return replace(support, **changes)


def _describe(support: SentenceSupport) -> str:
    short = _clean(support.sentence)
    short = short if len(short) <= 60 else short[:57].rsplit(" ", 1)[0] + "…"
    if support.missing_numbers:
        return f"{short!r} (numbers not in the passages: {', '.join(support.missing_numbers)})"
    return f"{short!r} ({support.judged_by})"


def _without(pieces: list[tuple[str, str]], supports: list[SentenceSupport]) -> str:
    """The text without the unsupported sentences; a removed sentence's citation markers
    move to the sentence before it when that one has none."""
    out: list[str] = []
    for (sentence, gap), support in zip(pieces, supports, strict=True):
        if support.supported:
            out.append(sentence + gap)
            continue
        markers = "".join(m.strip() for m in _MARKERS.findall(sentence + gap))
        if markers and out and not _MARKERS.search(out[-1]):
            out[-1] = out[-1].rstrip() + " " + markers + " "
    return "".join(out).strip()


def _build(deps: GuardrailDeps) -> GroundingGuard:
    from cxbot.prompts import ReplyKey

    settings = deps.config.grounding
    return GroundingGuard(
        deps.embed_many,
        fallback=deps.prompts.reply(ReplyKey.UNGROUNDED),
        settings=GroundingSettings(
            max_unsupported=settings.max_unsupported,
            judge=settings.judge,
            nli_model=settings.nli_model,
        ),
        chat_model=deps.chat_model,
        prompts=deps.prompts,
    )


PLUGIN = GuardrailPlugin(
    "grounding",
    "output",
    _build,
    "Removes the sentences of a knowledge answer that its cited passages do not support.",
)
