"""Passage embedding precision: bf16 passages agree with fp32 ones, the switch is honoured
and query-time vectors stay fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxbot.config import EmbeddingConfig, load_config
from cxbot.embeddings import (
    SentenceTransformerEmbedder,
    embed_passages,
    native_bf16,
    resolve_precision,
)
from cxbot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def passages(limit: int = 24) -> list[str]:
    """Real knowledge passages of a few hundred characters (the Northwind articles)."""
    texts: list[str] = []
    for path in sorted((ROOT / "knowledge" / "northwind").rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        texts += [text[i : i + 900] for i in range(0, len(text), 780)]
    return texts[:limit]


def twin(embedder: SentenceTransformerEmbedder, precision: str) -> SentenceTransformerEmbedder:
    """An embedder with ``precision`` sharing the session's loaded model."""
    other = SentenceTransformerEmbedder(precision=precision)  # type: ignore[arg-type]
    other._model = embedder._model
    return other


def test_bf16_passages_agree_with_fp32_ones(embedder: SentenceTransformerEmbedder) -> None:
    texts = passages()
    bf16 = twin(embedder, "bf16").embed_passages(texts)
    fp32 = twin(embedder, "fp32").embed_passages(texts)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    cosines = (bf16 * fp32).sum(axis=1)
    assert cosines.min() > 0.999
    assert not np.array_equal(bf16, fp32)  # bf16 arithmetic really ran


def test_fp32_passages_are_the_plain_models_vectors(embedder: SentenceTransformerEmbedder) -> None:
    texts = passages(8)
    plain = embedder._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(twin(embedder, "fp32").embed_passages(texts), plain)


def test_queries_and_documents_stay_fp32_whatever_the_precision(
    embedder: SentenceTransformerEmbedder,
) -> None:
    texts = passages(6)
    bf16 = twin(embedder, "bf16")
    plain = embedder._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(bf16.embed_documents(texts), plain)
    alone = embedder._model.encode(texts[:1], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(bf16.embed_query(texts[0]), alone[0])
    features = bf16.features(texts, None)
    np.testing.assert_allclose(np.stack([f.vector for f in features]), plain, atol=1e-5)


def test_config_precision_reaches_the_embedder(tmp_path: Path) -> None:
    assert EmbeddingConfig().precision == "auto"
    (tmp_path / "cxbot.yaml").write_text("embeddings:\n  precision: fp32\n", encoding="utf-8")
    settings = load_config(tmp_path, env={}).embeddings
    assert SentenceTransformerEmbedder.from_config(settings).passage_precision == "fp32"
    bf16 = load_config(tmp_path, env={"CXBOT_EMBEDDINGS__PRECISION": "bf16"}).embeddings
    assert SentenceTransformerEmbedder.from_config(bf16).passage_precision == "bf16"


def test_unknown_precision_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "cxbot.yaml").write_text("embeddings:\n  precision: int8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="precision"):
        load_config(tmp_path, env={})
    with pytest.raises(ConfigError, match="auto, fp32, bf16"):
        SentenceTransformerEmbedder(precision="int8")  # type: ignore[arg-type]


def test_auto_follows_the_cpus_bf16_instructions() -> None:
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        flags = {f for line in info if line.startswith("flags") for f in line.split()}
    expected = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert native_bf16() is expected
    assert resolve_precision("auto") == ("bf16" if expected else "fp32")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"


def test_embedders_without_passages_fall_back_to_documents(
    embedder: SentenceTransformerEmbedder,
) -> None:
    class Plain:
        dimension = 384

        def embed_query(self, text: str) -> np.ndarray:
            return embedder.embed_query(text)

        def embed_documents(self, texts: list[str]) -> np.ndarray:
            return embedder.embed_documents(texts)

    texts = passages(3)
    np.testing.assert_array_equal(embed_passages(Plain(), texts), embedder.embed_documents(texts))
    assert embed_passages(twin(embedder, "bf16"), []).shape == (0, 384)
