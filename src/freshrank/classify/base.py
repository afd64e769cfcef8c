"""Zero-shot classifier interface: score movies against labels never seen in training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from freshrank.catalog.models import Movie


class Classifier(Protocol):
    """scikit-learn style: ``fit`` indexes the catalogue once, ``score`` costs one pass per new label."""

    name: str

    @property
    def version(self) -> str:
        """Content hash of the model; scores are cached per version."""
        ...

    def fit(self, movies: Sequence[Movie]) -> Classifier:
        """Encode (or load cached encodings of) the catalogue."""
        ...

    def score(self, labels: Sequence[str]) -> np.ndarray:
        """Scores in [0, 1], shape (len(labels), len(movies)), rows in label order, columns in fit order."""
        ...

    def predict(self, sequences: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        """Scores of free texts against labels, shape (len(sequences), len(labels)) (the serving path)."""
        ...
