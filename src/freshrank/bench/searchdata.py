"""Workloads for the search bench and the ranking tests: trend scores shaped like the classifier's, and
generated catalogues for scale runs.

No model runs here, so the scores cost milliseconds: a label's raw score per movie is a noisy baseline
(what an embedding gives every movie for any label) plus a BM25 signal of the label's words in the movie's
text, then the production calibration (``max(0, z - 2)``) keeps the few movies that stand out, about 2-5 %
of the catalogue with a long tail, as the real classifier's calibrated scores do.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence

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


_TEXT = (
    "love war city night girl boy family story secret life death world house man woman dark last king "
    "lost dream road island river ghost robot star space time heart fire blood game money school town "
    "summer winter christmas wedding shark alien vampire zombie detective spy heist storm ocean mountain "
    "desert train prison queen army doctor hunter killer angel devil magic monster dragon soldier police"
)
_WORDS = _TEXT.split(" ")
_GENRES = ("Drama", "Comedy", "Thriller", "Action", "Romance", "Horror", "Family", "Animation", "Crime")


def generated_movies(count: int, seed: int = 7, start_id: int = 1) -> Iterator[Movie]:
    """``count`` synthetic movies with Zipf-like word frequencies (for scale runs, not for relevance)."""
    rng = random.Random(seed)
    vocabulary = _WORDS + [f"w{i}" for i in range(20_000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]

    def words(n: int) -> str:
        return " ".join(rng.choices(vocabulary, weights=weights, k=n))

    for movie_id in range(start_id, start_id + count):
        yield Movie(
            id=movie_id,
            title=words(rng.randint(1, 4)).title(),
            overview=words(rng.randint(15, 45)) + ".",
            tagline=words(rng.randint(0, 6)),
            genres=tuple(rng.sample(_GENRES, rng.randint(1, 3))),
            cast=tuple(f"Actor {rng.randint(1, 50_000)}" for _ in range(rng.randint(0, 5))),
            directors=(f"Director {rng.randint(1, 8_000)}",),
            release_year=rng.randint(1930, 2024),
        )
