"""ONNX Runtime encoders agree with PyTorch: fp32 to 0.99 cosine, int8 close enough for ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from freshrank.catalog.models import Movie
from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.encoder import TorchEncoder, cached_encode
from freshrank.classify.onnx import OnnxEncoder, export_cache_dir
from freshrank.train.trainer import TrainParams, _save_encoder


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base encoder cut to 2 layers: the same export path in a fraction of the time."""
    out = tmp_path_factory.mktemp("enc")
    _save_encoder(TrainParams(encoder_layers=2), out, "cpu")
    return out / "encoder"


TEXTS = [
    "Santa Claus delivers presents.",
    "",
    "Zombies attack a mall. " * 80,
    "Ein Film über Dinosaurier.",
    "🎄",
]


def test_onnx_fp32_and_int8_match_torch(encoder_dir: Path, tmp_path: Path, small_movies: list[Movie]) -> None:
    texts = TEXTS + [m.document for m in small_movies]
    reference = TorchEncoder(encoder_dir).encode(texts)
    fp32 = OnnxEncoder(encoder_dir, cache_dir=tmp_path, quantize=False).encode(texts, batch_size=4)
    int8 = OnnxEncoder(encoder_dir, cache_dir=tmp_path, quantize=True)
    quantized = int8.encode(texts, batch_size=3)
    assert fp32.shape == quantized.shape == reference.shape == (len(texts), 384)
    assert (fp32 * reference).sum(axis=1).min() > 0.99
    assert (quantized * reference).sum(axis=1).min() > 0.95
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-4)
    assert int8.version.startswith("onnx-int8-") and int8.path.is_relative_to(export_cache_dir())


def test_export_fuses_attention(encoder_dir: Path, tmp_path: Path) -> None:
    import onnx

    for quantize in (False, True):
        ops = {
            n.op_type
            for n in onnx.load(str(OnnxEncoder(encoder_dir, tmp_path, quantize=quantize).path)).graph.node
        }
        assert ops & {"Attention", "QAttention"} and "SkipLayerNormalization" in ops, ops


def test_export_is_cached_and_order_independent(
    encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRESHRANK_ONNX_CACHE", str(tmp_path / "exports"))
    first = OnnxEncoder(encoder_dir, cache_dir=tmp_path)
    again = OnnxEncoder(encoder_dir, cache_dir=tmp_path / "another-state-dir")
    assert first.path == again.path and first.path.is_relative_to(tmp_path / "exports")
    assert len(list((tmp_path / "exports").rglob("*.onnx"))) == 1  # one export, shared by both
    forward = first.encode(TEXTS)
    backward = first.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-5)
    vectors = cached_encode(first, TEXTS, tmp_path)
    assert len(list(tmp_path.glob("emb-onnx-int8-*.npy"))) == 1
    np.testing.assert_allclose(cached_encode(first, TEXTS, tmp_path), vectors)


def test_embedding_classifier_runs_on_onnx(
    encoder_dir: Path, tmp_path: Path, small_movies: list[Movie]
) -> None:
    encoder = OnnxEncoder(encoder_dir, cache_dir=tmp_path)
    classifier = EmbeddingClassifier(encoder=encoder, cache_dir=tmp_path).fit(small_movies)
    scores = classifier.score(["dinosaurs", "christmas", ""])
    assert scores.shape == (3, len(small_movies)) and np.all((scores >= 0) & (scores <= 1))
    assert classifier.version == f"embedding-{encoder.version}"
