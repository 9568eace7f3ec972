"""Grounded answers: from retrieved passages and allowlisted profile facts, with citations.

With a chat model: the ``rag_answer`` prompt, passages numbered for citation; streamed
sentence by sentence when the caller gives a text sink. Without one (offline): an
extractive answer — the passage sentences closest to the question, kept in
document order, each passage cited. With no evidence: ``None`` (the caller says it does
not know).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cxbot.errors import LLMUnavailable
from cxbot.llm import endpoint_for
from cxbot.prompts import PromptLibrary, PromptTask, ReplyKey
from cxbot.rag.store import Hit
from cxbot.types import Citation

if TYPE_CHECKING:
    from cxbot.embeddings import Embedder, Vector

__all__ = ["Answer", "Answerer", "citation_of", "passage_sentences", "relevant_facts"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_CITED = re.compile(r"\[(\d+)\]")
_DONT_KNOW = re.compile(r"^\W*i (do not|don'?t) know\W*$", re.I)
"""The exact refusal ``prompts/rag_answer.j2`` asks the model for."""
_FIRST_PERSON = re.compile(r"\b(my|mine|me|i|i'm|i've|am i)\b", re.I)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]


def _sentences(text: str) -> list[str]:
    """Sentences of a passage; a Markdown table row reads as "header: cell; header: cell"."""
    out: list[str] = []
    header: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip().replace("**", "") for c in stripped.strip("|").split("|")]
            if all(set(c) <= set(":- ") for c in cells):
                continue  # the |---|---| rule under the header
            if not header:
                header = cells
                continue
            pairs = [f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False) if c]
            out.append("; ".join(pairs) + ".")
            continue
        header = []
        for sentence in _SENTENCE.split(line):
            sentence = sentence.replace("**", "").strip().lstrip("-*• ").strip()
            if sentence:
                out.append(sentence)
    return out


def passage_sentences(text: str) -> list[str]:
    """The sentences an extractive answer may quote from a passage (table rows as
    "header: cell; header: cell")."""
    return _sentences(text)


def citation_of(hit: Hit) -> Citation:
    """How a passage is cited: its source, title (with section and page) and a snippet."""
    meta = hit.metadata
    title = str(meta.get("title", ""))
    if meta.get("section") and meta.get("section") != title:
        title = f"{title} — {meta['section']}"
    if "page" in meta:
        title = f"{title} (page {meta['page']})"
    snippet = hit.text if len(hit.text) <= 240 else hit.text[:237].rsplit(" ", 1)[0] + "…"
    return Citation(
        source=str(meta.get("source", hit.id)),
        title=title,
        snippet=snippet,
        score=round(hit.score, 4),
    )


def relevant_facts(
    question: str,
    vector: Vector,
    facts: Mapping[str, str],
    field_vectors: Mapping[str, Vector],
    threshold: float,
) -> dict[str, str]:
    """Profile facts whose description is close to a first-person question."""
    if not _FIRST_PERSON.search(question):
        return {}
    return {
        key: value
        for key, value in facts.items()
        if key in field_vectors and float(field_vectors[key] @ vector) >= threshold
    }


class Answerer:
    """Writes the grounded answer of the RAG route."""

    PASSAGE_MARGIN = 0.08
    """Passages scoring this far below the best one are not quoted offline."""
    SENTENCE_MARGIN = 0.15
    """Sentences scoring this far below the best sentence are left out."""

    def __init__(
        self,
        embedder: Embedder,
        prompts: PromptLibrary,
        *,
        chat_model: Any = None,
        max_sentences: int = 3,
        system_prompt: str = "",
    ) -> None:
        self.embedder = embedder
        self.prompts = prompts
        self.chat_model = endpoint_for(chat_model, "rag_answer")
        self.max_sentences = max_sentences
        self.system_prompt = system_prompt

    def run(
        self,
        question: str,
        vector: Vector,
        hits: Sequence[Hit],
        facts: Mapping[str, str],
        *,
        on_text: Callable[[str], bool] | None = None,
    ) -> Answer | None:
        """The answer, or ``None`` when there is no evidence or the model refuses.

        With a chat model and ``on_text``, the answer is streamed: see :meth:`_stream`.
        """
        if not hits and not facts:
            return None
        if self.chat_model is not None:
            if on_text is not None:
                return self._stream(question, vector, hits, facts, on_text)
            return self._generate(question, vector, hits, facts)
        return self._extract(vector, hits, facts)

    # -- offline -------------------------------------------------------------------------
    def _facts_text(self, facts: Mapping[str, str]) -> str:
        listed = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in facts.items())
        return self.prompts.reply(ReplyKey.PROFILE_INTRO, facts=listed)

    def _extract(self, vector: Vector, hits: Sequence[Hit], facts: Mapping[str, str]) -> Answer:
        candidates: list[tuple[int, int, str]] = []
        close = (
            [h for h in hits[:3] if h.score >= hits[0].score - self.PASSAGE_MARGIN] if hits else []
        )
        for rank, hit in enumerate(close):
            for position, sentence in enumerate(_sentences(hit.text)):
                if len(sentence.split()) >= 4:
                    candidates.append((rank, position, sentence))
        chosen: list[tuple[int, int, str]] = []
        if candidates:
            sims = self.embedder.embed_documents([c[2] for c in candidates]) @ vector
            # a small bonus for the better-ranked passage keeps answers coherent
            scores = [float(sim) - 0.03 * c[0] for sim, c in zip(sims, candidates, strict=True)]
            floor = max(scores) - self.SENTENCE_MARGIN
            ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
            best = [i for i in ranked if scores[i] >= floor][: self.max_sentences]
            chosen = sorted(candidates[i] for i in best)
        used = sorted({rank for rank, _, _ in chosen})
        parts = []
        for rank in used:
            text = " ".join(s for r, _, s in chosen if r == rank)
            parts.append(f"{text} [{used.index(rank) + 1}]")
        citations = [citation_of(close[rank]) for rank in used]
        if facts:
            parts.insert(0, self._facts_text(facts))
            citations += [
                Citation(f"profile: {k}", k.replace("_", " "), v) for k, v in facts.items()
            ]
        return Answer(" ".join(parts), tuple(citations))

    # -- with an LLM ---------------------------------------------------------------------
    def _messages(self, question: str, hits: Sequence[Hit], facts: Mapping[str, str]) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        passages = [
            {
                "n": i + 1,
                "source": h.metadata.get("source", h.id),
                "title": h.metadata.get("title", ""),
                "text": h.text,
            }
            for i, h in enumerate(hits)
        ]
        prompt = self.prompts.render(
            PromptTask.RAG_ANSWER, question=question, passages=passages, facts=facts
        )
        return [SystemMessage(self.system_prompt), HumanMessage(prompt)]

    def _generate(
        self, question: str, vector: Vector, hits: Sequence[Hit], facts: Mapping[str, str]
    ) -> Answer | None:
        assert self.chat_model is not None
        try:
            message = self.chat_model.invoke(self._messages(question, hits, facts))
        except LLMUnavailable:  # recorded in the turn; the offline answer stands in
            return self._extract(vector, hits, facts)
        text = str(message.content).strip()
        if _DONT_KNOW.match(text):
            return None
        return self._cited(text, hits, facts)

    def _cited(self, text: str, hits: Sequence[Hit], facts: Mapping[str, str]) -> Answer:
        """``text`` with the passages its ``[n]`` markers cite (all of them if it has none)."""
        cited = {int(n) for n in _CITED.findall(text) if 0 < int(n) <= len(hits)}
        chosen = sorted(cited) if cited else list(range(1, len(hits) + 1))
        citations = [citation_of(hits[n - 1]) for n in chosen]
        citations += [Citation(f"profile: {k}", k.replace("_", " "), v) for k, v in facts.items()]
        return Answer(text, tuple(citations))

    def _stream(
        self,
        question: str,
        vector: Vector,
        hits: Sequence[Hit],
        facts: Mapping[str, str],
        on_text: Callable[[str], bool],
    ) -> Answer | None:
        """:meth:`_generate` over the chat model's streaming API.

        Each sentence goes to ``on_text`` once the next one has begun (the last one when
        the stream ends), so the pieces concatenate to the answer text. A reply that is only
        the refusal is one sentence with nothing after it: it is never passed on, and the
        result is ``None`` as with :meth:`_generate`. ``on_text`` returning ``False`` rejects
        the piece and stops the generation; the answer is then the text up to that piece.
        The endpoint failing gives the offline answer (pieces already passed on are then
        not its start).
        """
        assert self.chat_model is not None
        try:
            stream: Iterator[Any] = self.chat_model.stream(self._messages(question, hits, facts))
        except LLMUnavailable:
            return self._extract(vector, hits, facts)
        text, passed = "", 0
        try:
            while True:
                try:
                    chunk = next(stream)
                except StopIteration:
                    break
                except LLMUnavailable:  # the endpoint failing must not lose the turn
                    return self._extract(vector, hits, facts)
                text += str(chunk.text)
                body = text.lstrip()
                end = _sentence_end(body, passed)
                if end > passed:
                    piece, passed = body[passed:end], end
                    if not on_text(piece):
                        return self._cited(body[:passed].strip(), hits, facts)
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                close()
        text = text.strip()
        if _DONT_KNOW.match(text):
            return None
        if len(text) > passed:
            on_text(text[passed:])
        return self._cited(text, hits, facts)


def _sentence_end(text: str, start: int) -> int:
    """Where the last sentence of ``text`` after ``start`` that is followed by more text
    ends (its trailing whitespace included); ``start`` when there is none."""
    end = start
    for match in _SENTENCE.finditer(text, start):
        if text[match.end() :].strip():
            end = match.end()
    return end
