"""The trained intent model: two heads over one encoder pass, saved to disk and reloaded.

* a **linear head** (multinomial logistic regression) on the turn's shared sentence vector;
* a **tuned head**: a fine-tuned copy of the encoder's top layers (two of MiniLM's six by
  default) run on the token states the same pass left at the layer below them, mean-pooled
  and scored against one learned direction per intent (cosine softmax).

The turn's one forward pass through the encoder yields both the sentence vector (RAG,
guardrails, the linear head) and the intermediate token states (the tuned head), so the
encoder runs once per message. Predictions average the two heads' log-probabilities and are
calibrated with one temperature fitted on held-out examples; the out-of-scope threshold is
chosen on the same held-out examples (see :func:`cxbot.nlu.training.train_intent_model`).
Embedders that expose no token states (any :class:`~cxbot.embeddings.Embedder`) get the
linear head alone.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxbot.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

    from cxbot.embeddings import Features, Matrix

__all__ = ["IntentModel", "TrainingSettings"]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """How an :class:`IntentModel` is trained (defaults measured on Banking77)."""

    tune_layers: int = 2
    """Top encoder layers fine-tuned for the tuned head; 0 trains the linear head alone."""
    epochs: int | None = None
    """Passes over the data; ``None``: 3, or more for small sets (at least ``min_steps``)."""
    min_steps: int = 100
    learning_rate: float = 1e-4
    head_learning_rate: float = 2e-3
    batch_size: int = 32
    scale: float = 20.0
    label_smoothing: float = 0.1
    inverse_l2: float = 30.0
    """Inverse L2 strength of the linear heads (``C`` of scikit-learn's LogisticRegression)."""
    seed: int = 0
    few_shot: int = 20
    """At or below this many examples per intent (median), the tuned layers learn by
    supervised contrastive pairs and a linear layer is fitted on their output; above it,
    by cross-entropy through the cosine head."""
    contrastive_steps: int = 200
    """At most; fewer for small sets (about 16 passes over the examples)."""
    contrastive_classes: int = 16
    contrastive_per_class: int = 4
    temperature: float = 0.05

    def epochs_for(self, examples: int) -> int:
        if self.epochs is not None:
            return self.epochs
        steps_per_epoch = max(1, math.ceil(examples / self.batch_size))
        return max(3, math.ceil(self.min_steps / steps_per_epoch))


@dataclass(slots=True)
class _Meta:
    labels: list[str]
    threshold: float = 0.0
    temperature: float = 1.0
    first_tuned_layer: int | None = None
    encoder: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    format: int = FORMAT


class IntentModel:
    """Intent probabilities for messages already encoded (see ``Embedder.features``)."""

    def __init__(
        self,
        labels: Sequence[str],
        linear: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
        tuned: torch.nn.Module | None = None,
        *,
        first_tuned_layer: int | None = None,
        threshold: float = 0.0,
        temperature: float = 1.0,
        encoder: str = "",
        settings: TrainingSettings | None = None,
        fingerprint: str = "",
    ) -> None:
        self.labels = list(labels)
        self.linear_weight, self.linear_bias = linear
        self.tuned = tuned
        self.first_tuned_layer = first_tuned_layer if tuned is not None else None
        self.threshold = threshold
        self.temperature = temperature
        self.encoder = encoder
        self.settings = settings or TrainingSettings()
        self.fingerprint = fingerprint

    # -- inference -------------------------------------------------------------------------
    def logits(self, features: Sequence[Features]) -> Matrix:
        """Uncalibrated ensemble log-probabilities, messages x labels."""
        import numpy as np

        vectors = np.stack([f.vector for f in features]).astype(np.float32)
        scores = _log_softmax(vectors @ self.linear_weight.T + self.linear_bias)
        if self.tuned is not None:
            states = [f.states for f in features]
            if any(s is None for s in states):
                raise ConfigError(
                    "this intent model needs the encoder's token states; "
                    "use the embedder it was trained with"
                )
            tuned = _tuned_logits(self.tuned, [s for s in states if s is not None])
            scores = (scores + _log_softmax(tuned)) / 2
        result: Matrix = scores.astype(np.float32)
        return result

    def probabilities(self, features: Sequence[Features]) -> Matrix:
        """Calibrated probabilities, messages x labels (rows sum to 1)."""
        import numpy as np

        logits = self.logits(features) / self.temperature
        result: Matrix = np.exp(_log_softmax(logits)).astype(np.float32)
        return result

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``model.json`` and ``weights.pt`` (atomic: a crash leaves the old model)."""
        import torch

        directory.mkdir(parents=True, exist_ok=True)
        meta = _Meta(
            labels=self.labels,
            threshold=self.threshold,
            temperature=self.temperature,
            first_tuned_layer=self.first_tuned_layer,
            encoder=self.encoder,
            settings=asdict(self.settings),
            fingerprint=self.fingerprint,
        )
        weights: dict[str, Any] = {
            "linear_weight": torch.from_numpy(self.linear_weight.copy()),
            "linear_bias": torch.from_numpy(self.linear_bias.copy()),
        }
        if self.tuned is not None:
            weights["tuned"] = self.tuned.state_dict()
        tmp_weights = directory / "weights.pt.tmp"
        tmp_meta = directory / "model.json.tmp"
        torch.save(weights, tmp_weights)
        tmp_meta.write_text(json.dumps(asdict(meta), indent=2) + "\n", encoding="utf-8")
        tmp_weights.replace(directory / "weights.pt")
        tmp_meta.replace(directory / "model.json")

    @classmethod
    def load(cls, directory: Path, layers: Any = None) -> IntentModel:
        """Read a saved model; ``layers`` builds the tuned head's layers (encoder copies)."""
        import torch

        meta_path = directory / "model.json"
        try:
            meta = _Meta(**json.loads(meta_path.read_text(encoding="utf-8")))
            weights = torch.load(directory / "weights.pt", weights_only=True)
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise ConfigError(f"{meta_path}: cannot load the intent model: {exc}") from exc
        if meta.format != FORMAT:
            raise ConfigError(f"{meta_path}: model format {meta.format}, expected {FORMAT}")
        tuned = None
        if "tuned" in weights:
            if layers is None:
                raise ConfigError(
                    f"{meta_path}: the tuned head needs the encoder it was trained on"
                )
            tuned = TunedHead(layers, len(meta.labels))
            tuned.load_state_dict(weights["tuned"])
            tuned.eval()
        known = {f for f in TrainingSettings.__dataclass_fields__}
        settings = TrainingSettings(**{k: v for k, v in meta.settings.items() if k in known})
        return cls(
            meta.labels,
            (weights["linear_weight"].numpy(), weights["linear_bias"].numpy()),
            tuned,
            first_tuned_layer=meta.first_tuned_layer,
            threshold=meta.threshold,
            temperature=meta.temperature,
            encoder=meta.encoder,
            settings=settings,
            fingerprint=meta.fingerprint,
        )

    @staticmethod
    def saved_meta(directory: Path) -> dict[str, Any]:
        """The saved model's ``model.json`` (empty when there is none or it is unreadable)."""
        try:
            meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}


# -- the tuned head --------------------------------------------------------------------------
def _torch_module() -> Any:
    import torch

    return torch.nn.Module


class TunedHead(_torch_module()):  # type: ignore[misc]
    """Fine-tuned top encoder layers → mean pool → cosine against one vector per intent."""

    def __init__(self, layers: Sequence[Any], classes: int, scale: float = 20.0) -> None:
        import torch

        super().__init__()
        self.layers = torch.nn.ModuleList([copy.deepcopy(layer) for layer in layers])
        hidden = self._hidden_size()
        self.directions = torch.nn.Parameter(torch.zeros(classes, hidden))
        self.bias = torch.nn.Parameter(torch.zeros(classes))
        self.register_buffer("cosine", torch.tensor(1.0))
        self.scale = scale

    def _hidden_size(self) -> int:
        for parameter in self.layers.parameters():
            return int(parameter.shape[-1])
        raise ConfigError("the tuned head needs at least one encoder layer")

    def embed(self, states: Any, mask: Any) -> Any:
        import torch
        import torch.nn.functional as F

        extended = (1.0 - mask[:, None, None, :]) * torch.finfo(states.dtype).min
        hidden = states
        for layer in self.layers:
            out = layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(pooled, dim=-1)

    def forward(self, states: Any, mask: Any) -> Any:
        import torch.nn.functional as F

        pooled = self.embed(states, mask)
        if bool(self.cosine):
            return self.scale * pooled @ F.normalize(self.directions, dim=-1).T
        return pooled @ self.directions.T + self.bias


def pad(states: Sequence[Any]) -> tuple[Any, Any]:
    """Token-state matrices of different lengths → (batch x T x H states, batch x T mask)."""
    import torch

    length = max(int(s.shape[0]) for s in states)
    hidden = int(states[0].shape[1])
    batch = torch.zeros(len(states), length, hidden)
    mask = torch.zeros(len(states), length)
    for row, state in enumerate(states):
        n = int(state.shape[0])
        batch[row, :n] = torch.as_tensor(state, dtype=torch.float32)
        mask[row, :n] = 1.0
    return batch, mask


def _tuned_logits(head: Any, states: Sequence[Any], batch_size: int = 256) -> Matrix:
    import numpy as np
    import torch

    order = sorted(range(len(states)), key=lambda i: int(states[i].shape[0]))
    out = np.zeros((len(states), int(head.directions.shape[0])), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch, mask = pad([states[i] for i in rows])
            out[rows] = head(batch, mask).numpy()
    return out


def _log_softmax(x: Any) -> Any:
    import numpy as np

    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# -- training pieces (used by cxbot.nlu.training) --------------------------------------------
def fit_linear(
    vectors: Matrix, targets: Sequence[int], classes: int, inverse_l2: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Multinomial logistic regression (L-BFGS, full batch) on sentence vectors."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(vectors, dtype=torch.float32)
    y = torch.as_tensor(list(targets), dtype=torch.long)
    weight = torch.zeros(classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    penalty = 0.5 / (inverse_l2 * len(y))
    optimiser = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=300, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> Any:
        optimiser.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y) + penalty * (weight**2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimiser.step(closure)  # type: ignore[no-untyped-call]
    return weight.detach().numpy().copy(), bias.detach().numpy().copy()


def fit_tuned(
    layers: Sequence[Any],
    states: Sequence[Any],
    vectors: Matrix,
    targets: Sequence[int],
    classes: int,
    settings: TrainingSettings,
) -> Any:
    """Fine-tune copies of the top layers: cross-entropy through a cosine-softmax head
    (one-cycle schedule), or for few examples per intent supervised contrastive pairs and a
    linear layer fitted on the tuned output."""
    import statistics

    import torch

    torch.manual_seed(settings.seed)
    head = TunedHead(layers, classes, scale=settings.scale)
    y = torch.as_tensor(list(targets), dtype=torch.long)
    per_class = statistics.median(torch.bincount(y, minlength=classes).tolist())
    if per_class <= settings.few_shot:
        return _fit_contrastive(head, states, y, classes, settings)
    return _fit_cross_entropy(head, states, vectors, y, classes, settings)


def _fit_contrastive(
    head: Any, states: Sequence[Any], y: Any, classes: int, settings: TrainingSettings
) -> Any:
    import torch

    rng = random.Random(settings.seed)
    members: dict[int, list[int]] = {}
    for row, label in enumerate(y.tolist()):
        members.setdefault(label, []).append(row)
    usable = sorted(c for c, rows in members.items() if len(rows) >= 2)
    optimiser = torch.optim.AdamW(head.layers.parameters(), lr=settings.learning_rate / 2)
    head.train()
    per_batch = settings.contrastive_classes * settings.contrastive_per_class
    steps = min(settings.contrastive_steps, math.ceil(16 * len(states) / per_batch))
    for _ in range(steps if len(usable) >= 2 else 0):
        chosen = rng.sample(usable, min(settings.contrastive_classes, len(usable)))
        rows = [
            r
            for c in chosen
            for r in rng.sample(members[c], min(settings.contrastive_per_class, len(members[c])))
        ]
        batch, mask = pad([states[i] for i in rows])
        keep = (torch.rand_like(mask) > 0.1).float()  # token dropout: a cheap augmentation
        keep[:, 0] = 1.0
        z = head.embed(batch, mask * keep)
        labels = y[rows]
        same = torch.eye(len(rows), dtype=torch.bool)
        similarity = (z @ z.T / settings.temperature).masked_fill(same, -1e9)
        positive = (labels[:, None] == labels[None, :]) & ~same
        log_p = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
        loss = -((log_p * positive).sum(1) / positive.sum(1).clamp(min=1)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head.eval()
    with torch.inference_mode():
        tuned = torch.cat(
            [
                head.embed(*pad([states[i] for i in range(s, min(s + 256, len(states)))]))
                for s in range(0, len(states), 256)
            ]
        )
    weight, bias = fit_linear(tuned.numpy(), y.tolist(), classes, settings.inverse_l2)
    with torch.no_grad():
        head.directions.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
        head.cosine.fill_(0.0)
    return head


def _fit_cross_entropy(
    head: Any,
    states: Sequence[Any],
    vectors: Matrix,
    y: Any,
    classes: int,
    settings: TrainingSettings,
) -> Any:
    import torch
    import torch.nn.functional as F

    rng = random.Random(settings.seed)
    v = torch.as_tensor(vectors, dtype=torch.float32)
    with torch.no_grad():  # start each direction at its intent's mean sentence vector
        for c in range(classes):
            members = v[y == c]
            if len(members):
                head.directions[c] = members.mean(0)
    epochs = settings.epochs_for(len(states))
    per_epoch = math.ceil(len(states) / settings.batch_size)
    optimiser = torch.optim.AdamW(
        [
            {"params": head.layers.parameters(), "lr": settings.learning_rate},
            {"params": [head.directions], "lr": settings.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=[settings.learning_rate, settings.head_learning_rate],
        total_steps=epochs * per_epoch,
        pct_start=0.1,
    )
    head.train()
    index = list(range(len(states)))
    for _ in range(epochs):
        rng.shuffle(index)
        batches: list[list[int]] = []
        window = settings.batch_size * 50  # bucket by length inside windows: less padding
        for start in range(0, len(index), window):
            chunk = sorted(index[start : start + window], key=lambda i: int(states[i].shape[0]))
            batches += [
                chunk[b : b + settings.batch_size]
                for b in range(0, len(chunk), settings.batch_size)
            ]
        rng.shuffle(batches)
        for rows in batches:
            batch, mask = pad([states[i] for i in rows])
            loss = F.cross_entropy(
                head(batch, mask), y[rows], label_smoothing=settings.label_smoothing
            )
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
    head.eval()
    return head


def fit_temperature(logits: Matrix, targets: Sequence[int]) -> float:
    """The temperature that minimises held-out negative log-likelihood (grid search)."""
    import numpy as np

    if len(targets) == 0:
        return 1.0
    y = np.asarray(list(targets))
    best, best_nll = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.05), math.log(5.0), 60)):
        logp = _log_softmax(logits / t)
        nll = float(-logp[np.arange(len(y)), y].mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best
