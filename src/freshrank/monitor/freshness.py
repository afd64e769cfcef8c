"""The freshness monitor: decide ``ok``, ``reclassify`` or ``retrain`` from signals, with reasons.

Signals (each a :class:`Signal` with its value and threshold):

* ``unscored_labels`` → reclassify: trending labels the current model has not scored yet.
* ``flat_scores`` → retrain: trending labels whose stored scores barely separate the top movies from the rest
  (peak z = (mean of the top 10 − mean of the top ``SCORE_SAMPLE``) / std of the top ``SCORE_SAMPLE``): the
  model cannot tell what the label means. ``low_confidence`` is the same for the best score itself (only for
  classifiers whose scores are probabilities: the NLI models).
* ``vocabulary_drift`` → retrain: share of trending labels whose nearest evaluated label (the labels the model
  was evaluated on) has cosine similarity below ``drift_similarity`` in the base encoder's space.
* ``metric_drop`` → retrain: latest recorded nDCG@10 of the model below the champion's recorded figure.
* ``model_age`` → retrain: the champion is older than ``max_age_days``.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from freshrank.search.base import SearchBackend, SearchRequest

log = logging.getLogger(__name__)

Decision = Literal["ok", "reclassify", "retrain"]
EXIT_CODES: dict[str, int] = {"ok": 0, "reclassify": 10, "retrain": 11}
SCORE_SAMPLE = 200
TOP = 10


@dataclass(frozen=True)
class Thresholds:
    """Where a signal turns into an action; the defaults and how they were chosen: docs/evaluation.md."""

    min_peak_z: float = 1.5
    min_confidence: float = 0.5  # probability-scaled classifiers only (NLI entailment)
    max_flat_share: float = 0.5  # retrain when more than this share of trending labels is flat
    drift_similarity: float = 0.5
    max_drift_share: float = 0.5
    max_metric_drop: float = 0.05  # absolute nDCG@10
    max_age_days: float = 30.0


@dataclass(frozen=True)
class Signal:
    name: str
    action: Decision
    reason: str
    value: float | None = None
    threshold: float | None = None
    labels: tuple[str, ...] = ()


@dataclass
class MonitorInput:
    """Everything the decision looks at (gathered from the live system by :func:`gather`)."""

    classifier: str
    model_version: str
    trending: list[str]
    scored: set[str]
    score_samples: dict[str, list[float]]  # label -> the top SCORE_SAMPLE stored scores, best first
    probability_scores: bool
    evaluated_labels: list[str]
    latest_ndcg: float | None
    recorded_ndcg: float | None
    model_created: datetime | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class MonitorReport:
    decision: Decision
    signals: list[Signal]
    checks: dict[str, Any]
    classifier: str
    model_version: str
    acted: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    @property
    def reasons(self) -> list[str]:
        return [s.reason for s in self.signals if s.action != "ok"]

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "exit_code": self.exit_code,
            "reasons": self.reasons,
            "signals": [{**asdict(s), "labels": list(s.labels)} for s in self.signals],
            "checks": self.checks,
            "classifier": self.classifier,
            "model_version": self.model_version,
            "acted": self.acted,
        }


def peak_z(scores: Sequence[float], top: int = TOP) -> float:
    """How far the best ``top`` scores stand out of the sample: (mean top - mean all) / std all."""
    if len(scores) <= top:
        return 0.0
    values = np.asarray(scores, dtype=float)
    spread = float(values.std())
    if spread < 1e-9:
        return 0.0
    return float((np.sort(values)[::-1][:top].mean() - values.mean()) / spread)


Embed = Callable[[Sequence[str]], np.ndarray]


def drift_share(current: Sequence[str], evaluated: Sequence[str], embed: Embed, similarity: float) -> tuple[
    float, list[str]
]:
    """Share of ``current`` labels with no evaluated label at cosine >= ``similarity``, and those labels."""
    if not current or not evaluated:
        return 0.0, []
    a, b = embed(list(current)), embed(list(evaluated))
    nearest = (a @ b.T).max(axis=1)
    far = [label for label, sim in zip(current, nearest, strict=True) if sim < similarity]
    return len(far) / len(current), far


def _short(labels: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(x[:40]) for x in labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def decide(data: MonitorInput, t: Thresholds, embed: Embed | None = None) -> MonitorReport:
    """The decision and every signal behind it (retrain beats reclassify beats ok)."""
    signals: list[Signal] = []
    checks: dict[str, Any] = {"trending": len(data.trending)}

    unscored = [label for label in data.trending if label not in data.scored]
    checks["unscored_labels"] = unscored
    if unscored:
        signals.append(Signal("unscored_labels", "reclassify",
                              f"{len(unscored)} trending label(s) not scored by model {data.model_version}: "
                              f"{_short(unscored)}", len(unscored), 0, tuple(unscored)))  # fmt: skip

    signals += _score_signals(data, t, checks)

    if embed is not None:
        share, far = drift_share(data.trending, data.evaluated_labels, embed, t.drift_similarity)
        checks["vocabulary_drift"] = {"share": share, "far": far, "evaluated_on": data.evaluated_labels}
        if share > t.max_drift_share:
            signals.append(Signal("vocabulary_drift", "retrain",
                                  f"{share:.0%} of trending labels are unlike every label the model was evaluated "
                                  f"on (cosine < {t.drift_similarity}): {_short(far)}",
                                  share, t.max_drift_share, tuple(far)))  # fmt: skip

    checks["ndcg@10"] = {"latest": data.latest_ndcg, "recorded": data.recorded_ndcg}
    if data.latest_ndcg is not None and data.recorded_ndcg is not None:
        drop = data.recorded_ndcg - data.latest_ndcg
        if drop > t.max_metric_drop:
            signals.append(Signal("metric_drop", "retrain",
                                  f"nDCG@10 fell to {data.latest_ndcg:.3f} from the recorded {data.recorded_ndcg:.3f} "
                                  f"(drop {drop:.3f} > {t.max_metric_drop})", drop, t.max_metric_drop))  # fmt: skip

    if data.model_created is not None:
        age_days = (data.now - data.model_created).total_seconds() / 86400
        checks["model_age_days"] = age_days
        if age_days > t.max_age_days:
            signals.append(Signal("model_age", "retrain",
                                  f"model {data.model_version} is {age_days:.0f} days old (> {t.max_age_days:.0f})",
                                  age_days, t.max_age_days))  # fmt: skip

    actions = {s.action for s in signals}
    decision: Decision = "retrain" if "retrain" in actions else "reclassify" if "reclassify" in actions else "ok"
    return MonitorReport(decision, signals, checks, data.classifier, data.model_version)


def _score_signals(data: MonitorInput, t: Thresholds, checks: dict[str, Any]) -> list[Signal]:
    flat, unsure, figures = [], [], {}
    for label, scores in data.score_samples.items():
        z = peak_z(scores)
        figures[label] = {"peak_z": z, "top_score": scores[0] if scores else None}
        if z < t.min_peak_z:
            flat.append(label)
        if data.probability_scores and scores and scores[0] < t.min_confidence:
            unsure.append(label)
    checks["scores"] = figures
    signals = []
    scored = len(data.score_samples)
    if scored and len(flat) / scored > t.max_flat_share:
        signals.append(Signal("flat_scores", "retrain",
                              f"{len(flat)}/{scored} trending labels have flat scores (peak z < {t.min_peak_z}): "
                              f"{_short(flat)}", len(flat) / scored, t.max_flat_share, tuple(flat)))  # fmt: skip
    if scored and len(unsure) / scored > t.max_flat_share:
        signals.append(Signal("low_confidence", "retrain",
                              f"{len(unsure)}/{scored} trending labels have no movie scored above "
                              f"{t.min_confidence}: {_short(unsure)}", len(unsure) / scored, t.max_flat_share,
                              tuple(unsure)))  # fmt: skip
    return signals


def score_sample(backend: SearchBackend, model_version: str, label: str, size: int = SCORE_SAMPLE) -> list[float]:
    """The best ``size`` stored scores of ``label`` for ``model_version`` (via a no-text, boost-only search)."""
    request = SearchRequest(text="", labels=(label,), model_version=model_version, limit=size, boost_weight=1.0)
    page = backend.search(request)
    return sorted((hit.trend_scores.get(label, 0.0) for hit in page.hits), reverse=True)


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None
