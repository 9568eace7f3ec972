"""Optional cross-encoder re-ranking of retrieved passages.

A cross-encoder reads the question and a passage together and scores the pair; it orders
candidates better than cosine similarity alone, at the cost of one model pass per
candidate. The retriever fetches ``rag.rerank_candidates`` passages, fuses them, and a
:class:`Reranker` keeps the best ``k`` in the cross-encoder's order.

Re-ranking changes only the order. Every :class:`~cxbot.rag.store.Hit` keeps its cosine
``score``, because that score is the evidence threshold (``rag.min_score``) and what a
citation reports; cross-encoder scores are on another scale (often unbounded logits).

The weights are a local folder saved by ``sentence_transformers.CrossEncoder.save`` (or
downloaded beforehand); nothing is downloaded at run time. :func:`reranker_from_config`
turns ``rag.reranker`` into a re-ranker, or ``None`` when it is unset or the folder is
missing, so the offline default works without any cross-encoder weights::

    reranker = reranker_from_config(config.rag.reranker, root=project_dir)
    if reranker is not None:
        hits = reranker.rerank(question, hits, k=config.rag.top_k)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from cxbot.errors import BackendError, ConfigError
from cxbot.rag.store import Hit

__all__ = ["CrossEncoderReranker", "Reranker", "reranker_from_config"]

log = logging.getLogger("cxbot.rag")


class Reranker(Protocol):
    """Reorders retrieved passages for a question; keeps each hit's cosine score."""

    def rerank(self, question: str, hits: Sequence[Hit], k: int) -> list[Hit]: ...


class CrossEncoderReranker:
    """Re-ranks passages with a sentence-transformers ``CrossEncoder`` from a local folder.

    The model loads on the first :meth:`rerank` or on an explicit :meth:`load`
    (:meth:`warm_up` is the same); construction does no I/O. A folder that does not exist
    raises :class:`~cxbot.errors.ConfigError`; one that exists but does not load as a
    cross-encoder raises :class:`~cxbot.errors.BackendError`.
    """

    def __init__(
        self, model_path: str | Path, *, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the cross-encoder now (idempotent, thread-safe)."""
        self._get_model()

    def warm_up(self) -> None:
        """Stage-style alias of :meth:`load`."""
        self.load()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    @property
    def model(self) -> Any:
        """The loaded ``CrossEncoder`` (loads it if needed)."""
        return self._get_model()

    def _get_model(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
        return self._model

    def _load_model(self) -> Any:
        if not self.model_path.exists():
            raise ConfigError(
                "cross-encoder folder not found",
                file=self.model_path,
                fix="set rag.reranker to a folder saved by CrossEncoder.save, or remove it",
            )
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(str(self.model_path), device=self.device, local_files_only=True)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError, …
            raise BackendError(
                f"cross-encoder in {self.model_path} could not be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        """The cross-encoder's score of each ``(question, text)`` pair, in input order."""
        if not texts:
            return []
        model = self._get_model()
        try:
            raw = model.predict(
                [(question, text) for text in texts],
                batch_size=self.batch_size,
                show_progress_bar=False,
            )
        except Exception as exc:  # a model failing mid-turn is an operations problem
            raise BackendError(f"cross-encoder failed: {type(exc).__name__}: {exc}") from exc
        return [float(s) for s in raw]

    def rerank(self, question: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        """The ``k`` hits the cross-encoder scores highest, best first.

        Equal scores keep the incoming (fused) order. The hits are returned unchanged, so
        ``score`` is still the cosine similarity.
        """
        if k <= 0 or not hits:
            return []
        scores = self.scores(question, [hit.text for hit in hits])
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return [hits[i] for i in order[:k]]


def reranker_from_config(
    path: str | None,
    *,
    root: str | Path | None = None,
    batch_size: int = 32,
    device: str = "cpu",
) -> Reranker | None:
    """The re-ranker ``rag.reranker`` names, or ``None`` to keep the fused order.

    ``None`` when ``path`` is unset (silently) or when the folder does not exist or holds
    no model (one warning), so a project runs offline without cross-encoder weights. A
    relative ``path`` is read from ``root`` (the project folder). The model itself loads
    on first use; a folder whose files are unreadable raises
    :class:`~cxbot.errors.BackendError` then.
    """
    if not path:
        return None
    folder = Path(path)
    if root is not None and not folder.is_absolute():
        folder = Path(root) / folder
    if not (folder / "config.json").is_file():
        log.warning(
            "rag.reranker: no cross-encoder weights in %s; passages keep the retrieval order",
            folder,
        )
        return None
    return CrossEncoderReranker(folder, batch_size=batch_size, device=device)
