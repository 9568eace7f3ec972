"""Training suggestions: what real customers said that the assistant did not understand or
could not answer, grouped, named and turned into a patch a designer reviews.

The messages come from the turn log (their stored, PII-redacted text and vector; nothing is
embedded again):

- **not understood**: turns the NLU read outside a task in progress and found out of scope
  or below ``review_below`` confidence;
- **not answered**: turns that searched the knowledge base and said "I don't know".

Identical messages count once. Each group is clustered (scikit-learn's agglomerative
clustering, average linkage over cosine distance, cut at ``distance``); a cluster of fewer
than ``min_size`` distinct messages is left out. A cluster is named by its most central
messages (closest to its mean vector). For a not-understood cluster, every intent's
examples are compared with each message: the intent with the highest mean best-example
similarity is its nearest intent, and the cluster becomes

- **examples for that intent** when that similarity reaches ``attach_at`` — the customers'
  own wording of something the assistant knows, or
- **a candidate new intent** otherwise, with a proposed name from its most distinctive
  words and the nearest intent and similarity noted for the reviewer.

Not-answered clusters become **articles to write**. :meth:`Suggestions.to_yaml` renders all
of it as commented YAML; nothing is ever written to ``flows/``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxbot.conversation.events import BotUttered, UserUttered
from cxbot.conversation.turns import LoggedTurn, SQLiteTurnLog

if TYPE_CHECKING:
    import numpy.typing as npt

    from cxbot.embeddings import Embedder

__all__ = [
    "ArticleProposal",
    "ExampleProposal",
    "IntentProposal",
    "Message",
    "SuggestSettings",
    "Suggestions",
    "collect",
    "intent_examples",
    "suggest",
    "suggest_from_project",
]

_WORD = re.compile(r"[a-z][a-z']+")
_STOP = frozenset(
    """a about above after again all am an and any are as at be been before being but by can
    could did do does doing don't for from get got had has have having how i i'm i've if in
    into is it it's its just me might more most my need no not now of off on once only or other
    our out please really should so some still such than that the their them then there these
    they this those through to too up very want was we were what when where which while who
    why will with would you your yours i'd can't cannot isn't won't didn't hasn't haven't""".split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class SuggestSettings:
    review_below: float = 0.6
    """Intent confidence under which an understood message is reviewed."""
    distance: float = 0.55
    """Cosine distance at which clusters stop merging (average linkage)."""
    min_size: int = 3
    """Fewest distinct messages a cluster needs to be proposed."""
    attach_at: float = 0.55
    """Mean best-example similarity from which a cluster is examples of its nearest intent."""
    examples_per_proposal: int = 8
    max_messages: int = 5000
    """Most recent distinct messages clustered per kind."""


@dataclass(frozen=True, slots=True)
class Message:
    """A distinct customer message and where it was said (``conversation/turn`` keys)."""

    text: str
    vector: npt.NDArray[np.float32]
    turns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExampleProposal:
    """Messages to add as examples of an existing intent."""

    intent: str
    file: str
    similarity: float
    examples: tuple[str, ...]
    messages: int
    turns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntentProposal:
    """A group of messages no intent covers: a candidate new intent."""

    name: str
    examples: tuple[str, ...]
    messages: int
    nearest_intent: str | None
    similarity: float
    turns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArticleProposal:
    """Questions answered "I don't know": an article to write."""

    title: str
    questions: tuple[str, ...]
    messages: int
    turns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suggestions:
    """The proposals, for a designer to review (see :meth:`to_yaml`)."""

    reviewed: int
    """Distinct not-understood messages clustered."""
    unanswered: int
    """Distinct "I don't know" questions clustered."""
    examples: tuple[ExampleProposal, ...]
    intents: tuple[IntentProposal, ...]
    articles: tuple[ArticleProposal, ...]
    settings: SuggestSettings = field(default_factory=SuggestSettings)
    generated_at: datetime | None = None

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.reviewed} distinct messages not understood, "
            f"{self.unanswered} questions not answered",
            f"{len(self.examples)} example proposals for existing intents, "
            f"{len(self.intents)} candidate new intents, {len(self.articles)} articles to write",
        ]
        lines += [
            f"  examples → {p.intent} ({p.messages} messages, similarity {p.similarity:.2f})"
            for p in self.examples
        ]
        lines += [
            f"  new intent {p.name} ({p.messages} messages): {p.examples[0]}" for p in self.intents
        ]
        lines += [f"  article: {p.title} ({p.messages} questions)" for p in self.articles]
        return lines

    def to_yaml(self) -> str:
        """The patch as YAML with comments (strings JSON-quoted, so every line is valid)."""
        q = json.dumps
        s = self.settings
        when = f" on {self.generated_at:%Y-%m-%d %H:%M}" if self.generated_at else ""
        out = [
            f"# cxbot suggest{when}: proposals from real conversations, for review.",
            "# Nothing here is applied. Copy the examples you accept into the intent's file",
            "# (flows/<flow>.yaml or the intents file), add accepted new intents there with a",
            "# flow or a reply, and write the articles under knowledge/.",
            f"# {self.reviewed} distinct messages not understood (out of scope or confidence",
            f'# < {s.review_below}), {self.unanswered} questions answered "I don\'t know";',
            f"# clusters cut at cosine distance {s.distance}, at least {s.min_size} messages.",
            "",
            "intent_examples:" + (" []" if not self.examples else ""),
        ]
        for p in self.examples:
            out += [
                f"  # {p.messages} messages; mean best similarity to its examples "
                f"{p.similarity:.2f}",
                f"  - intent: {q(p.intent)}",
                f"    file: {q(p.file)}",
                f"    similarity: {p.similarity:.3f}",
                f"    seen_in: {q(list(_conversations(p.turns)))}",
                "    examples:",
                *(f"      - {q(e)}" for e in p.examples),
            ]
        out += ["", "new_intents:" + (" []" if not self.intents else "")]
        for i in self.intents:
            nearest = (
                f"nearest intent {i.nearest_intent} at {i.similarity:.2f}"
                if i.nearest_intent
                else "no intent near"
            )
            out += [
                f"  # candidate: {i.messages} messages, {nearest}",
                f"  - name: {q(i.name)}",
                f"    messages: {i.messages}",
                f"    nearest_intent: {q(i.nearest_intent)}",
                f"    similarity: {i.similarity:.3f}",
                f"    seen_in: {q(list(_conversations(i.turns)))}",
                "    examples:",
                *(f"      - {q(e)}" for e in i.examples),
            ]
        out += ["", "knowledge_gaps:" + (" []" if not self.articles else "")]
        for a in self.articles:
            out += [
                f'  # {a.messages} questions answered "I don\'t know"',
                f"  - article: {q(a.title)}",
                f"    messages: {a.messages}",
                f"    seen_in: {q(list(_conversations(a.turns)))}",
                "    questions:",
                *(f"      - {q(e)}" for e in a.questions),
            ]
        return "\n".join(out) + "\n"


def _conversations(turns: Sequence[str], limit: int = 5) -> list[str]:
    return list(dict.fromkeys(t.rsplit("/", 1)[0] for t in turns))[:limit]


# --- collecting ------------------------------------------------------------------------------


def collect(
    turns: Iterable[LoggedTurn], review_below: float
) -> tuple[list[Message], list[Message]]:
    """The distinct not-understood messages and "I don't know" questions, with vectors."""
    unclear: dict[str, tuple[npt.NDArray[np.float32], list[str]]] = {}
    unanswered: dict[str, tuple[npt.NDArray[np.float32], list[str]]] = {}
    for turn in turns:
        record = turn.record
        if record is None or record.vector is None:
            continue
        said = next((e for e in turn.events if isinstance(e, UserUttered)), None)
        reply = next((e for e in turn.events if isinstance(e, BotUttered)), None)
        if said is None:
            continue
        key = f"{turn.conversation_id}/{turn.turn}"
        understood = "nlu" in record.trace and not record.in_flow
        if understood and (said.intent is None or said.confidence < review_below):
            unclear.setdefault(record.text, (record.vector, []))[1].append(key)
        if "retrieval" in record.trace and reply is not None and reply.failed:
            unanswered.setdefault(record.text, (record.vector, []))[1].append(key)

    def messages(table: Mapping[str, tuple[npt.NDArray[np.float32], list[str]]]) -> list[Message]:
        return [Message(text, vector, tuple(keys)) for text, (vector, keys) in table.items()]

    return messages(unclear), messages(unanswered)


def _clusters(messages: Sequence[Message], settings: SuggestSettings) -> list[list[int]]:
    """Indices of each cluster of at least ``min_size`` messages, largest first."""
    if len(messages) < max(2, settings.min_size):
        return []
    from sklearn.cluster import AgglomerativeClustering

    matrix = np.stack([m.vector for m in messages]).astype(np.float32)
    labels = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=settings.distance,
    ).fit_predict(matrix)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    kept = [g for g in groups.values() if len(g) >= settings.min_size]
    kept.sort(key=lambda g: (-sum(len(messages[i].turns) for i in g), g[0]))
    return kept


def _central(messages: Sequence[Message], group: Sequence[int], count: int) -> list[str]:
    vectors = np.stack([messages[i].vector for i in group])
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    order = np.argsort(-(vectors @ centre), kind="stable")
    return [messages[group[int(i)]].text for i in order[:count]]


def _name(texts: Sequence[str], background: Counter[str]) -> str:
    """Two words that are frequent in the cluster and rarer elsewhere, as an intent name."""
    inside: Counter[str] = Counter()
    for text in texts:
        inside.update(set(w for w in _WORD.findall(text.lower()) if w not in _STOP))
    total = sum(background.values()) or 1
    scored = sorted(
        inside,
        key=lambda w: (-inside[w] / (1 + background[w] * len(texts) / total), w),
    )
    words = [w.replace("'", "") for w in scored[:2]]
    return "_".join(words) or "new_intent"


def suggest(
    turns: Iterable[LoggedTurn],
    examples: Mapping[str, Sequence[str]],
    embedder: Embedder,
    *,
    files: Mapping[str, str] | None = None,
    settings: SuggestSettings | None = None,
    now: datetime | None = None,
) -> Suggestions:
    """Proposals from ``turns`` given each intent's ``examples`` (embedded with
    ``embedder``, the encoder that made the stored vectors); ``files`` names where each
    intent's examples live."""
    settings = settings or SuggestSettings()
    unclear, unanswered = collect(turns, settings.review_below)
    unclear = unclear[-settings.max_messages :]
    unanswered = unanswered[-settings.max_messages :]
    names = [name for name, texts in examples.items() if texts]
    example_vectors = [np.asarray(embedder.embed_documents(list(examples[n]))) for n in names]
    background: Counter[str] = Counter()
    for message in unclear:
        background.update(set(w for w in _WORD.findall(message.text.lower()) if w not in _STOP))
    example_props: list[ExampleProposal] = []
    intent_props: list[IntentProposal] = []
    for group in _clusters(unclear, settings):
        members = [unclear[i] for i in group]
        matrix = np.stack([m.vector for m in members])
        support = [float((matrix @ ev.T).max(axis=1).mean()) for ev in example_vectors]
        best = int(np.argmax(support)) if support else -1
        nearest = names[best] if best >= 0 else None
        similarity = round(support[best], 4) if best >= 0 else 0.0
        central = _central(unclear, group, settings.examples_per_proposal)
        keys = tuple(k for m in members for k in m.turns)
        if nearest is not None and similarity >= settings.attach_at:
            known = {e.lower() for e in examples[nearest]}
            fresh = tuple(t for t in central if t.lower() not in known)
            if fresh:
                example_props.append(
                    ExampleProposal(
                        intent=nearest,
                        file=(files or {}).get(nearest, ""),
                        similarity=similarity,
                        examples=fresh,
                        messages=len(keys),
                        turns=keys,
                    )
                )
        else:
            intent_props.append(
                IntentProposal(
                    name=_name([m.text for m in members], background),
                    examples=tuple(central),
                    messages=len(keys),
                    nearest_intent=nearest,
                    similarity=similarity,
                    turns=keys,
                )
            )
    articles = []
    for group in _clusters(unanswered, settings):
        members = [unanswered[i] for i in group]
        central = _central(unanswered, group, settings.examples_per_proposal)
        keys = tuple(k for m in members for k in m.turns)
        articles.append(
            ArticleProposal(
                title=central[0], questions=tuple(central), messages=len(keys), turns=keys
            )
        )
    return Suggestions(
        reviewed=len(unclear),
        unanswered=len(unanswered),
        examples=tuple(example_props),
        intents=_unique_names(intent_props),
        articles=tuple(articles),
        settings=settings,
        generated_at=now,
    )


def _unique_names(proposals: Sequence[IntentProposal]) -> tuple[IntentProposal, ...]:
    seen: Counter[str] = Counter()
    result = []
    for proposal in proposals:
        seen[proposal.name] += 1
        if seen[proposal.name] > 1:
            proposal = _renamed(proposal, f"{proposal.name}_{seen[proposal.name]}")
        result.append(proposal)
    return tuple(result)


def _renamed(proposal: IntentProposal, name: str) -> IntentProposal:
    from dataclasses import replace

    return replace(proposal, name=name)


# --- from a project ----------------------------------------------------------------------------


def intent_examples(root: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Every intent's examples in a project (flows and the intents file) and the file (relative
    to ``root``) that holds them."""
    from cxbot._yaml import read_yaml
    from cxbot.config import load_config

    config = load_config(root)
    examples: dict[str, tuple[str, ...]] = {}
    files: dict[str, str] = {}
    intents_file = root / config.nlu.intents_file
    if intents_file.exists():
        data: Any = read_yaml(intents_file) or {}
        for item in data.get("intents", []) or []:
            examples[str(item["name"])] = tuple(str(e) for e in item.get("examples", []) or [])
            files[str(item["name"])] = config.nlu.intents_file
    for path in sorted((root / "flows").glob("*.yaml")):
        if path == intents_file or path.name == "intents.yaml":
            continue
        data = read_yaml(path) or {}
        if isinstance(data, Mapping) and "name" in data:
            name = str(data["name"])
            examples[name] = tuple(str(e) for e in data.get("examples", []) or [])
            files[name] = str(path.relative_to(root))
    return examples, files


def suggest_from_project(
    root: Path,
    conversations: Path,
    *,
    since: datetime | None = None,
    settings: SuggestSettings | None = None,
    embedder: Embedder | None = None,
) -> Suggestions:
    """:func:`suggest` over a project's intents and a conversations file."""
    from cxbot.config import load_config
    from cxbot.embeddings import SentenceTransformerEmbedder

    examples, files = intent_examples(root)
    if embedder is None:
        embedder = SentenceTransformerEmbedder.from_config(load_config(root).embeddings)
    log = SQLiteTurnLog(conversations)
    try:
        return suggest(
            log.turns(since),
            examples,
            embedder,
            files=files,
            settings=settings,
            now=datetime.now().astimezone(),
        )
    finally:
        log.close()
