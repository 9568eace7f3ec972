"""The injection classifier head: logistic regression over the MiniLM vector the turn already
computed and the message's word and word-pair TF-IDF features, so scoring a message is one
dot product and a dictionary walk over its words. The vector carries what the message is
about; the words carry the wording of attacks the vector blurs ("without", "her account",
"you were told").

The shipped head (``injection_head.json``) is trained by ``cxbot train injection``
on the original labelled sets in ``evals/guardrails/`` (``*-train.jsonl``), benign customer
messages (Banking77 training split, the project's intent examples) and public attack
collections read from a path. Held-out attacks (``*-heldout.jsonl`` and a hash-chosen
share of every public collection) never reach training: ``cxbot eval guardrails`` measures
on them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxbot.errors import ConfigError

__all__ = [
    "DEFAULT_HEAD",
    "InjectionHead",
    "held_out",
    "read_texts",
    "train_head",
]

DEFAULT_HEAD = Path(__file__).with_name("injection_head.json")
HELD_OUT_SHARE = 0.3
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _grams(text: str) -> list[str]:
    """Words (two letters or more, lower case) and adjacent word pairs, as the head's
    vocabulary names them."""
    words = _TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


@dataclass(frozen=True, slots=True)
class InjectionHead:
    """Weights of the trained head and the probability at which it blocks."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    model: str = "all-MiniLM-L6-v2"
    trained_on: dict[str, int] = field(default_factory=dict)
    terms: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Vocabulary of the lexical features: term -> (idf, weight); empty = vector only."""
    lexical_scale: float = 1.0
    """Factor of the L2-normalised TF-IDF features in the model's input."""

    def lexical(self, text: str) -> float:
        """The lexical features' contribution to the logit of ``text`` (sublinear TF-IDF
        over the vocabulary, L2-normalised, as the head was trained)."""
        counts = Counter(g for g in _grams(text) if g in self.terms)
        if not counts:
            return 0.0
        values = [(1.0 + math.log(n)) * self.terms[g][0] for g, n in counts.items()]
        norm = math.sqrt(sum(v * v for v in values))
        total = sum(v * self.terms[g][1] for v, g in zip(values, counts, strict=True))
        return self.lexical_scale * total / norm

    @classmethod
    def load(cls, path: Path = DEFAULT_HEAD) -> InjectionHead:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                weights=tuple(float(w) for w in data["weights"]),
                bias=float(data["bias"]),
                threshold=float(data["threshold"]),
                model=str(data.get("model", "all-MiniLM-L6-v2")),
                trained_on={str(k): int(v) for k, v in data.get("trained_on", {}).items()},
                terms={
                    str(t): (float(v[0]), float(v[1]))
                    for t, v in data.get("lexicon", {}).get("terms", {}).items()
                },
                lexical_scale=float(data.get("lexicon", {}).get("scale", 1.0)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"injection classifier head is unreadable: {exc}",
                file=path,
                fix="train one with `cxbot train injection`",
            ) from exc

    def save(self, path: Path) -> None:
        data = {
            "model": self.model,
            "threshold": self.threshold,
            "bias": self.bias,
            "trained_on": self.trained_on,
            "weights": [round(w, 6) for w in self.weights],
        }
        if self.terms:
            data["lexicon"] = {
                "scale": self.lexical_scale,
                "terms": {
                    t: [round(i, 5), round(w, 6)] for t, (i, w) in sorted(self.terms.items())
                },
            }
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    def matrix(self) -> Any:
        import numpy as np

        return np.asarray(self.weights, dtype=np.float32)

    def probabilities(
        self, vectors: Any, weights: Any | None = None, texts: Sequence[str] | str | None = None
    ) -> Any:
        """Attack probability of each row of ``vectors`` (or of one vector), with the
        lexical features of ``texts`` (one text per row, or one text) when the head has a
        vocabulary."""
        import numpy as np

        w = self.matrix() if weights is None else weights
        logits = np.asarray(vectors, dtype=np.float32) @ w + self.bias
        if self.terms and texts is not None:
            if isinstance(texts, str):
                logits = logits + self.lexical(texts)
            else:
                logits = logits + np.asarray([self.lexical(t) for t in texts], dtype=np.float32)
        return 1.0 / (1.0 + np.exp(-logits))


def held_out(text: str, share: float = HELD_OUT_SHARE) -> bool:
    """Whether ``text`` belongs to the held-out share of a public collection (stable)."""
    digest = hashlib.sha256(" ".join(text.split()).lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _strings(data: Any) -> Iterable[str]:
    """Every prompt string in a JSON value: lists, dicts of lists, rows with a text field."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)
    elif isinstance(data, dict):
        for key in ("text", "prompt", "content"):
            if isinstance(data.get(key), str):
                yield data[key]
                return
        for value in data.values():
            yield from _strings(value)


def read_texts(path: Path) -> list[str]:
    """Prompts from a file (``.jsonl`` rows with ``text``, ``.json`` of strings or rows,
    ``.txt`` one per line) or from every such file under a folder.

    Template placeholders such as ``{generator.name}`` become a neutral name.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    texts: list[str] = []
    for file in files:
        raw = file.read_text(encoding="utf-8", errors="replace")
        if file.suffix == ".jsonl":
            rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
            texts += [t for row in rows for t in _strings(row)]
        elif file.suffix == ".json":
            texts += list(_strings(json.loads(raw)))
        elif file.suffix == ".txt":
            texts += [line for line in raw.splitlines() if line.strip() and line[0] != "#"]
    cleaned = (" ".join(t.replace("{generator.name}", "Nora").split()) for t in texts)
    return list(dict.fromkeys(t for t in cleaned if len(t) >= 8))


def train_head(
    attack_vectors: Any,
    benign_vectors: Any,
    *,
    benign_weights: Sequence[float] | None = None,
    max_benign_rate: float = 0.005,
    min_threshold: float = 0.3,
    trained_on: dict[str, int] | None = None,
    texts: Sequence[str] | None = None,
    lexical_scale: float = 1.0,
) -> InjectionHead:
    """Fit the head (balanced logistic regression) and pick the blocking threshold.

    ``texts`` (the attacks' then the benign messages', in the vectors' order) add the
    lexical features: word and word-pair TF-IDF (terms in at least 3 messages), scaled by
    ``lexical_scale``.

    The threshold is the higher of ``min_threshold`` and the score that blocks at most
    ``max_benign_rate`` of the ordinary benign messages (weight 1: real customer messages,
    not the hard negatives) in 5-fold cross-validation, so the false-alarm rate is chosen
    on messages the fold did not train on and on the traffic it will see. The hard
    negatives shape the boundary through their weight rather than the threshold.
    """
    if not 0.0 <= max_benign_rate < 1.0:
        raise ConfigError(f"max_benign_rate must be in [0, 1), not {max_benign_rate}")
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    dense = np.vstack([attack_vectors, benign_vectors]).astype(np.float32)
    dims = dense.shape[1]
    y = np.array([1] * len(attack_vectors) + [0] * len(benign_vectors))
    vocabulary: Any = None
    if texts is not None:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        vocabulary = TfidfVectorizer(
            ngram_range=(1, 2), min_df=3, sublinear_tf=True, max_features=8000
        )
        lexical = vocabulary.fit_transform(list(texts)) * lexical_scale
        x: Any = sparse.hstack([sparse.csr_matrix(dense), lexical]).tocsr()
    else:
        x = dense
    sample = (
        np.ones(len(y))
        if benign_weights is None
        else np.concatenate([np.ones(len(attack_vectors)), np.asarray(benign_weights, dtype=float)])
    )

    def fit(rows: Any) -> Any:
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        model.fit(x[rows], y[rows], sample_weight=sample[rows])
        return model

    held_scores = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=7).split(x, y):
        held_scores[test] = fit(train).predict_proba(x[test])[:, 1]
    benign_scores = held_scores[y == 0]
    ordinary = sample[y == 0] == 1.0
    benign_scores = np.sort(benign_scores[ordinary] if ordinary.any() else benign_scores)
    cut = benign_scores[
        min(len(benign_scores) - 1, math.floor((1 - max_benign_rate) * len(benign_scores)))
    ]
    model = fit(np.arange(len(y)))
    coef = model.coef_[0]
    terms: dict[str, tuple[float, float]] = {}
    if vocabulary is not None:
        idf = vocabulary.idf_
        terms = {
            term: (float(idf[i]), float(coef[dims + i]))
            for term, i in vocabulary.vocabulary_.items()
        }
    return InjectionHead(
        weights=tuple(float(w) for w in coef[:dims]),
        bias=float(model.intercept_[0]),
        threshold=round(max(min_threshold, float(cut)), 4),
        trained_on=dict(trained_on or {}),
        terms=terms,
        lexical_scale=lexical_scale,
    )


# Attack-like wording in ordinary requests, wrapped around real customer messages so the
# head learns that these words alone are not an attack.
_BENIGN_WRAPPERS = (
    "Ignore my last message. {}",
    "Sorry, forget what I said before. {}",
    "Please disregard my previous message, {}",
    "New instructions for my account: {}",
    "{} Those are my instructions.",
    "Can you pretend I'm a new customer? {}",
    "Override what I said earlier: {}",
    "I'm the admin on our business account. {}",
    "My system shows an error. {}",
    "{} Forget the last bit, it doesn't matter.",
    "Quick question about the rules: {}",
    "{} Can you repeat that, please?",
    "Developer here, personal question: {}",
    "What mode is my account in? {}",
    "ok forget it. {}",
)


def augment(
    benign: Sequence[str],
    attacks: Sequence[str],
    *,
    count: int = 1500,
    mixed: int = 0,
    seed: int = 7,
) -> tuple[list[str], list[str]]:
    """Synthetic hard negatives (customer messages wrapped in attack-like wording) and
    attacks appended to or prefixed by a genuine customer message."""
    import random

    rng = random.Random(seed)
    hosts = rng.sample(list(benign), min(count, len(benign)))
    short = [a for a in attacks if len(a) < 300]
    negatives = [rng.choice(_BENIGN_WRAPPERS).format(host) for host in hosts]
    positives = (
        [
            f"{host} {rng.choice(short)}" if i % 2 else f"{rng.choice(short)} {host}"
            for i, host in enumerate(hosts[:mixed])
        ]
        if short
        else []
    )
    return negatives, positives


def train_from_sources(
    embed: Any,
    *,
    attacks: Sequence[Path],
    benign: Sequence[Path],
    public: Sequence[Path] = (),
    benign_texts: Sequence[str] = (),
    hard_negative_weight: float = 5.0,
    synthetic: int = 1500,
    mixed: int = 0,
    max_benign_rate: float = 0.005,
    lexical: bool = True,
) -> InjectionHead:
    """Train a head from labelled files (``text`` rows), the training share of public attack
    collections (:func:`held_out` rows stay out), plain benign messages and ``synthetic``
    wrapped messages (:func:`augment`).

    ``embed`` maps a list of texts to a matrix of vectors (the assistant's embedder).
    Benign rows from ``benign`` files are hard negatives (attack-like wording in ordinary
    requests) and weigh ``hard_negative_weight`` times a plain benign message; synthetic
    hard negatives weigh half that.
    """
    counts: dict[str, int] = {}
    attack_texts: list[str] = []
    for path in attacks:
        found = read_texts(path)
        counts[path.name] = len(found)
        attack_texts += found
    for path in public:
        found = [t for t in read_texts(path) if not held_out(t)]
        counts[f"public:{path.name}"] = len(found)
        attack_texts += found
    hard = [t for path in benign for t in read_texts(path)]
    counts["hard_negatives"] = len(hard)
    counts["benign"] = len(benign_texts)
    if not attack_texts or not (hard or benign_texts):
        raise ConfigError("the injection head needs both attack and benign examples")
    wrapped, combined = (
        augment(benign_texts, attack_texts, count=synthetic, mixed=mixed) if synthetic else ([], [])
    )
    counts["synthetic_hard_negatives"] = len(wrapped)
    counts["synthetic_attacks"] = len(combined)
    attack_texts = list(dict.fromkeys([*attack_texts, *combined]))
    negatives = list(dict.fromkeys([*hard, *wrapped, *benign_texts]))
    weight = {t: hard_negative_weight / 2 for t in wrapped}
    weight.update({t: hard_negative_weight for t in hard})
    return train_head(
        embed(attack_texts),
        embed(negatives),
        benign_weights=[weight.get(t, 1.0) for t in negatives],
        max_benign_rate=max_benign_rate,
        trained_on=counts,
        texts=[*attack_texts, *negatives] if lexical else None,
    )
