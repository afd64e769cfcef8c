"""Calibrated trend scores: score every (movie, label) pair the current model lacks.

The only code that writes trend scores to a search backend (``refresh``); ``score_labels`` computes the same
calibrated scores in memory (the ad-hoc cache of the web API).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from freshrank.classify.base import Classifier
from freshrank.metrics import (
    REFRESH_DURATION,
    REFRESH_LABELS_SCORED,
    REFRESH_LAST_SUCCESS,
    TRENDING_LABELS,
    record_classification,
)
from freshrank.search.base import SearchBackend

log = logging.getLogger(__name__)

# Labels scored per classifier call: big enough to batch the label encodings, small enough that a
# failure loses little work and the progress bar moves.
LABELS_PER_BATCH = 8


@dataclass(frozen=True)
class Calibration:
    """Classifier scores to trend scores: per label, standardise over the catalogue and keep what stands out.

    Raw zero-shot scores have a label-specific offset (an embedding gives most movies ~0.6 for any label), so
    summing 20 trending labels adds mostly noise; ``max(0, z - threshold)`` boosts only the movies a label
    picks out. ``threshold=None`` stores the raw scores.
    """

    threshold: float | None = 2.0

    @property
    def tag(self) -> str:
        """Suffix of the stored model version, so a change of calibration re-scores instead of mixing."""
        return "" if self.threshold is None else f"+z{self.threshold:g}"

    def apply(self, scores: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return scores
        std = float(scores.std())
        if std == 0.0 or not np.isfinite(std):
            return np.zeros_like(scores)
        return np.maximum(0.0, (scores - scores.mean()) / std - self.threshold)

    @classmethod
    def named(cls, name: str, threshold: float) -> Calibration:
        if name not in ("zscore", "none"):
            raise ValueError(f"search.calibration must be 'zscore' or 'none', not {name!r}")
        return cls(threshold if name == "zscore" else None)


def scores_version(classifier: Classifier, calibration: Calibration) -> str:
    """The key the trend scores are stored under: the model version plus the calibration."""
    return classifier.version + calibration.tag


@dataclass
class RefreshReport:
    """What one refresh did: which trending labels were new for the model and what they cost."""

    classifier: str
    model_version: str
    trending: list[str]
    scored: list[str] = field(default_factory=list)
    already_scored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pairs: int = 0
    seconds: float = 0.0  # wall time of the whole refresh (fitting the catalogue included)
    scoring_seconds: float = 0.0  # time inside classifier.score only
    warnings: list[str] = field(default_factory=list)
    gc: dict[str, Any] | None = None  # the retention pass that followed (loop/retention.py), if any

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.scoring_seconds if self.scoring_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pairs_per_second": round(self.pairs_per_second, 1)}


FitCatalog = Callable[[], Sequence[int]]
"""Fits the classifier on the indexed catalogue (once) and returns the movie ids in fit (column) order."""

Progress = Callable[[int, int], None]
"""Called with (labels done, labels to do) as the work advances."""


def refresh(
    backend: SearchBackend,
    classifier: Classifier,
    labels: Sequence[str],
    fit: FitCatalog,
    progress: Progress | None = None,
    calibration: Calibration | None = None,
) -> RefreshReport:
    """Score the labels the classifier's current version lacks; a repeat with the same labels is free."""
    started = time.perf_counter()
    trending = list(dict.fromkeys(label for label in labels if label))
    calibration = calibration or Calibration()
    version = scores_version(classifier, calibration)
    done = backend.scored_labels(version)
    report = RefreshReport(classifier=classifier.name, model_version=version, trending=trending)
    report.already_scored = [label for label in trending if label in done]
    new = [label for label in trending if label not in done]
    TRENDING_LABELS.set(len(trending))
    if new:
        movie_ids = list(fit())
        _score_new_labels(backend, classifier, new, movie_ids, report, progress, calibration)
    report.seconds = time.perf_counter() - started
    _record(report)
    return report


def score_labels(
    classifier: Classifier, labels: Sequence[str], movie_ids: Sequence[int], calibration: Calibration
) -> dict[str, dict[int, float]]:
    """Calibrated scores of ``labels`` per movie id, in memory (nothing is written); zeros are left out."""
    scores = classifier.score(list(labels))
    _check_shape(scores, len(labels), len(movie_ids))
    out: dict[str, dict[int, float]] = {}
    for label, row in zip(labels, scores, strict=True):
        stored = calibration.apply(np.asarray(row, dtype=np.float64))
        out[label] = {i: s for i, s in zip(movie_ids, stored.tolist(), strict=True) if s != 0.0}
    return out


def _check_shape(scores: np.ndarray, labels: int, movies: int) -> None:
    if scores.shape != (labels, movies):
        raise ValueError(f"classifier returned shape {scores.shape}, expected {(labels, movies)}")


def _score_new_labels(
    backend: SearchBackend,
    classifier: Classifier,
    labels: list[str],
    movie_ids: list[int],
    report: RefreshReport,
    progress: Progress | None,
    calibration: Calibration,
) -> None:
    for start in range(0, len(labels), LABELS_PER_BATCH):
        batch = labels[start : start + LABELS_PER_BATCH]
        batch_started = time.perf_counter()
        try:
            scores = classifier.score(batch)
        except Exception as exc:  # a remote classifier may fail: keep what is written, report the rest
            log.warning("classifier %s failed on %d labels: %s", classifier.name, len(batch), exc)
            report.failed.update({label: str(exc) for label in batch})
            continue
        finally:
            report.scoring_seconds += time.perf_counter() - batch_started
        _check_shape(scores, len(batch), len(movie_ids))
        for label, row in zip(batch, scores, strict=True):
            stored = calibration.apply(np.asarray(row, dtype=np.float64))
            by_movie = dict(zip(movie_ids, stored.tolist(), strict=True))
            backend.put_scores(report.model_version, label, by_movie)
            report.scored.append(label)
            report.pairs += len(movie_ids)
        if progress:
            progress(min(start + len(batch), len(labels)), len(labels))


def _record(report: RefreshReport) -> None:
    REFRESH_DURATION.observe(report.seconds)
    if report.scored:
        REFRESH_LABELS_SCORED.labels(model_version=report.model_version).inc(len(report.scored))
        record_classification(report.classifier, report.pairs, report.scoring_seconds)
    if not report.failed:
        REFRESH_LAST_SUCCESS.set_to_current_time()
