"""The freshness monitor: decide ``ok``, ``reclassify`` or ``retrain`` from signals, with reasons.

Signals (each a :class:`Signal` with its value and threshold):

* ``unscored_labels`` → reclassify: trending labels the current model has not scored yet.
* ``flat_scores`` → retrain: trending labels whose stored scores barely separate the top movies from the rest
  of the catalogue (peak z = (mean of the top 10 − mean of all) / std of all, over the label's stored scores,
  at most ``SCORE_SAMPLE`` of them): the model cannot tell what the label means. ``low_confidence``: the best
  score itself is low (only for classifiers whose scores are probabilities: the NLI models).
* ``vocabulary_drift`` → retrain: share of trending labels whose nearest evaluated label (the labels the model
  was evaluated on) has cosine similarity below ``drift_similarity`` in the base encoder's space.
* ``metric_drop`` → retrain: latest recorded nDCG@10 of the model below the champion's recorded figure.
* ``model_age`` → retrain: the champion is older than ``max_age_days``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from freshrank.search.base import SearchBackend, SearchRequest

log = logging.getLogger(__name__)

Decision = Literal["ok", "reclassify", "retrain"]
EXIT_CODES: dict[str, int] = {"ok": 0, "reclassify": 10, "retrain": 11}
SCORE_SAMPLE = 10_000  # OpenSearch's default result window; the whole catalogue on SQLite up to that
TOP = 10
MIN_SAMPLE = 3 * TOP


@dataclass(frozen=True)
class Thresholds:
    """Where a signal turns into an action; the defaults and how they were chosen: docs/evaluation.md."""

    min_peak_z: float = 4.6  # measured: meaningful labels 5.0-6.0, meaningless ones 3.6-4.3 (embedding)
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
    score_samples: dict[str, list[float]]  # label -> its stored scores (the best SCORE_SAMPLE), best first
    probability_scores: bool
    evaluated_labels: list[str]
    latest_ndcg: float | None
    recorded_ndcg: float | None
    model_created: datetime | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    z_offset: float | None = None  # stored scores are max(0, z - z_offset) (search's calibration), else raw


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


def peak_z(scores: Sequence[float], top: int = TOP, z_offset: float | None = None) -> float | None:
    """How far the best ``top`` scores stand out of all scores: (mean top - mean all) / std all.

    ``z_offset``: the scores are calibrated as ``max(0, z - z_offset)`` (search's z-score calibration), so
    the peak z is the mean of the top ones plus the offset. None when the sample is too small to tell
    (fewer than ``MIN_SAMPLE`` scored movies)."""
    if len(scores) < MIN_SAMPLE:
        return None
    if z_offset is not None:
        return float(np.mean(sorted(scores, reverse=True)[:top])) + z_offset
    values = np.asarray(scores, dtype=float)
    spread = float(values.std())
    if spread < 1e-9:
        return 0.0
    return float((np.sort(values)[::-1][:top].mean() - values.mean()) / spread)


Embed = Callable[[Sequence[str]], np.ndarray]


def drift_share(
    current: Sequence[str], evaluated: Sequence[str], embed: Embed, similarity: float
) -> tuple[float, list[str]]:
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
            why = (f"{share:.0%} of trending labels are unlike every label the model was evaluated on "
                   f"(cosine < {t.drift_similarity}): {_short(far)}")  # fmt: skip
            signals.append(Signal("vocabulary_drift", "retrain", why, share, t.max_drift_share, tuple(far)))

    checks["ndcg@10"] = {"latest": data.latest_ndcg, "recorded": data.recorded_ndcg}
    if data.latest_ndcg is not None and data.recorded_ndcg is not None:
        drop = data.recorded_ndcg - data.latest_ndcg
        if drop > t.max_metric_drop:
            why = (f"nDCG@10 fell to {data.latest_ndcg:.3f} from the recorded {data.recorded_ndcg:.3f} "
                   f"(drop {drop:.3f} > {t.max_metric_drop})")  # fmt: skip
            signals.append(Signal("metric_drop", "retrain", why, drop, t.max_metric_drop))

    if data.model_created is not None:
        age_days = (data.now - data.model_created).total_seconds() / 86400
        checks["model_age_days"] = age_days
        if age_days > t.max_age_days:
            why = f"model {data.model_version} is {age_days:.0f} days old (> {t.max_age_days:.0f})"
            signals.append(Signal("model_age", "retrain", why, age_days, t.max_age_days))

    actions = {s.action for s in signals}
    decision: Decision = (
        "retrain" if "retrain" in actions else "reclassify" if "reclassify" in actions else "ok"
    )
    return MonitorReport(decision, signals, checks, data.classifier, data.model_version)


def _score_signals(data: MonitorInput, t: Thresholds, checks: dict[str, Any]) -> list[Signal]:
    """flat_scores / low_confidence over the trending labels whose score sample is large enough to judge."""
    flat, unsure, figures = [], [], {}
    for label, scores in data.score_samples.items():
        z = peak_z(scores, z_offset=data.z_offset)
        figures[label] = {"peak_z": z, "top_score": scores[0] if scores else None}
        if z is None:
            continue
        if z < t.min_peak_z:
            flat.append(label)
        if data.probability_scores and data.z_offset is None and scores[0] < t.min_confidence:
            unsure.append(label)
    checks["scores"] = figures
    judged = sum(1 for figure in figures.values() if figure["peak_z"] is not None)
    signals = []
    for name, labels, rule in (
        ("flat_scores", flat, f"flat scores (peak z < {t.min_peak_z})"),
        ("low_confidence", unsure, f"no movie scored above {t.min_confidence}"),
    ):
        if judged and len(labels) / judged > t.max_flat_share:
            why = f"{len(labels)}/{judged} trending labels have {rule}: {_short(labels)}"
            signals.append(
                Signal(name, "retrain", why, len(labels) / judged, t.max_flat_share, tuple(labels))
            )
    return signals


def score_sample(
    backend: SearchBackend, model_version: str, label: str, size: int = SCORE_SAMPLE
) -> list[float]:
    """The best ``size`` stored scores of ``label`` for ``model_version`` (a no-text, boost-only search)."""
    request = SearchRequest(
        text="", labels=(label,), model_version=model_version, limit=size, boost_weight=1.0
    )
    page = backend.search(request)
    return sorted((hit.trend_scores.get(label, 0.0) for hit in page.hits), reverse=True)
