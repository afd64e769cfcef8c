"""Zero-shot by embedding similarity: cosine of the movie text and the label, mapped to [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.classify.encoder import Encoder, cached_encode


class EmbeddingClassifier:
    """The baseline the NLI classifiers must beat: one encoding per new label plus a matrix product."""

    name = "embedding"

    def __init__(
        self, encoder: Encoder | None = None, cache_dir: Path | None = None, template: str = "{label}"
    ) -> None:
        self.encoder = encoder or _default_encoder(cache_dir)
        self.cache_dir = cache_dir
        self.template = template
        self._docs = np.zeros((0, 0), dtype=np.float32)

    @property
    def version(self) -> str:
        return f"{self.name}-{self.encoder.version}"

    def fit(self, movies: Sequence[Movie]) -> EmbeddingClassifier:
        self._docs = cached_encode(
            self.encoder, [m.document for m in movies], self.cache_dir, show_progress=len(movies) > 1000
        )
        return self

    def _labels(self, labels: Sequence[str]) -> np.ndarray:
        return self.encoder.encode([self.template.format(label=label) for label in labels])

    def score(self, labels: Sequence[str]) -> np.ndarray:
        return _to_unit_interval(self._labels(labels) @ self._docs.T)

    def predict(self, sequences: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        return _to_unit_interval(self.encoder.encode(sequences) @ self._labels(labels).T)


def _default_encoder(cache_dir: Path | None) -> Encoder:
    """The base encoder on ONNX Runtime, fp32: the reference keeps PyTorch's vectors (cosine 1.0000) and
    the serving path needs no torch once it is exported (int8 was only ~15 % faster on a CPU without AVX2)."""
    from freshrank.classify.onnx import OnnxEncoder

    return OnnxEncoder(cache_dir=cache_dir, quantize=False)


def _to_unit_interval(cosine: np.ndarray) -> np.ndarray:
    return np.clip((cosine + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
