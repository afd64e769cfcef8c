"""Workloads for the search bench and the ranking tests: trend scores shaped like the classifier's
(generated catalogues for scale runs: ``bench/generated.py``).

No model runs here, so the scores cost milliseconds: a label's raw score per movie is a noisy baseline
(what an embedding gives every movie for any label) plus a BM25 signal of the label's words in the movie's
text, then the production calibration (``max(0, z - 2)``) keeps the few movies that stand out, about 2-5 %
of the catalogue with a long tail, as the real classifier's calibrated scores do.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.classify.lexical import Bm25Index
from freshrank.loop.scores import Calibration

TREND_LABELS = (
    "christmas",
    "superhero",
    "zombies",
    "halloween",
    "dinosaurs",
    "shark week",
    "time loop",
    "space travel",
    "revenge",
    "haunted house",
    "bank heist",
    "road trip",
    "world war",
    "high school",
    "vampire",
    "robot uprising",
    "wedding",
    "boxing",
    "pirates",
    "alien invasion",
)


class TrendScores:
    """Calibrated trend scores per label for one catalogue (deterministic: seeded by the label text)."""

    def __init__(self, movies: Sequence[Movie], calibration: Calibration | None = None) -> None:
        self.ids = [movie.id for movie in movies]
        self._bm25 = Bm25Index([movie.document for movie in movies])
        self.calibration = calibration or Calibration()

    @classmethod
    def from_index(
        cls, ids: list[int], bm25: Bm25Index, calibration: Calibration | None = None
    ) -> TrendScores:
        """Scores for movies ``ids`` whose documents ``bm25`` indexes (row i is ``ids[i]``)."""
        scores = cls.__new__(cls)
        scores.ids, scores._bm25 = ids, bm25
        scores.calibration = calibration or Calibration()
        return scores

    def raw(self, label: str) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(label.encode()))
        signal = self._bm25.score(label).astype(np.float64)
        top = float(signal.max()) if signal.size else 0.0
        noise = rng.normal(0.55, 0.04, size=len(self.ids))
        return noise + (0.12 * signal / top if top > 0 else 0.0)

    def calibrated(self, label: str) -> np.ndarray:
        return self.calibration.apply(self.raw(label))

    def scores(self, label: str) -> dict[int, float]:
        """Every movie's calibrated score (zeros included), as ``refresh`` hands them to ``put_scores``."""
        return dict(zip(self.ids, self.calibrated(label).tolist(), strict=True))
