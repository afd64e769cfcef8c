"""Gather the monitor's inputs from the running system, and carry out its decision (``--act``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from freshrank.config import Settings
from freshrank.evaluate.base import EvaluationRun, QueryId
from freshrank.labels import hashtag_to_label
from freshrank.loop.service import ScoringLoop
from freshrank.monitor.freshness import SCORE_SAMPLE, Embed, MonitorInput, MonitorReport, score_sample

log = logging.getLogger(__name__)

NDCG = "ndcg@10"
EMBEDDING = "embedding"


class MonitorUnavailable(RuntimeError):
    """The classifier (or the search index) the monitor must inspect cannot be opened."""


def _registry_card(settings: Settings) -> Any:
    """The registry's model card of the configured classifier, or None (embedding baseline, no registry)."""
    try:
        from freshrank.classify.registry import RegistryReader

        registry = RegistryReader.from_settings(settings)
        version = registry.resolve(settings.classifier.name)
        return None if version == EMBEDDING else registry.card(version)
    except Exception as exc:  # no registry yet, unknown version: the age and card signals are skipped
        log.debug("no model card: %s", exc)
        return None


def _parse_time(text: str) -> datetime | None:
    try:
        created = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def model_runs(settings: Settings, model_version: str) -> list[EvaluationRun]:
    """Stored evaluation runs of ``model_version``, oldest first (empty when the store is unreachable)."""
    from freshrank.evaluate.store import open_judgment_store

    try:
        store = open_judgment_store(settings.resolved_judgments_url, limits=settings.judgments_store)
    except Exception as exc:  # the monitor still decides on the other signals
        log.warning("judgments store unavailable: %s", exc)
        return []
    try:
        return [r for r in store.runs(kind="evaluate") if r.model_version == model_version and NDCG in r.mean]
    finally:
        store.close()


def recorded_and_latest(runs: Sequence[EvaluationRun]) -> tuple[float | None, float | None]:
    """The model's first recorded nDCG@10 and its latest, on the same judged trends as the latest run."""
    if not runs:
        return None, None
    latest = runs[-1]
    same = [r for r in runs if sorted(r.trends) == sorted(latest.trends)]
    return same[0].mean[NDCG], latest.mean[NDCG]


def evaluated_labels(settings: Settings, runs: Sequence[EvaluationRun], card: Any) -> list[str]:
    """Labels the model was evaluated on: its stored runs, else its model card, else the gate's judgments."""
    trends: list[str] = [t for r in runs for t in r.trends]
    if not trends and card is not None:
        trends = [QueryId.parse(qid).trend for qid in card.metrics.per_query]
    if not trends:
        try:
            from freshrank.train.lifecycle import load_judgments

            trends = [j.trend for j in load_judgments(settings)]
        except Exception as exc:  # no judgments configured: drift cannot be measured
            log.debug("no evaluated labels: %s", exc)
    return list(dict.fromkeys(label for label in map(hashtag_to_label, trends) if label))


def encoder_embed(classifier: Any) -> Embed:
    """Unit vectors from the classifier's own encoder when it has one, else the base all-MiniLM-L6-v2."""
    encoder = getattr(classifier, "encoder", None)
    if encoder is None or not hasattr(encoder, "encode"):
        from freshrank.classify.onnx import OnnxEncoder

        encoder = OnnxEncoder()

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(encoder.encode(list(texts)), dtype=np.float32)

    return embed


def gather(settings: Settings, service: ScoringLoop | None = None) -> tuple[MonitorInput, list[str], Any]:
    """The monitor's inputs, the warnings met on the way, and the loaded classifier."""
    service = service or ScoringLoop.from_settings(settings)
    warnings: list[str] = []
    classifier = service.classifier(warnings)
    if classifier is None:
        raise MonitorUnavailable("; ".join(warnings) or "classifier unavailable")
    version = service.version(warnings)
    seen = len(warnings)
    trending = service.reader.current_labels(warnings)
    # Deciding on last known trends would judge a model on stale labels: an unreachable store is exit 3.
    lost = [w for w in warnings[seen:] if w.startswith("trend store unavailable")]
    if lost:
        raise MonitorUnavailable(lost[0])
    scored = service.backend.scored_labels(version)
    size = max(1, min(service.backend.count(), SCORE_SAMPLE))
    samples = {
        label: score_sample(service.backend, version, label, size) for label in trending if label in scored
    }
    card = _registry_card(settings)
    runs = model_runs(settings, version)
    recorded, latest = recorded_and_latest(runs)
    data = MonitorInput(
        classifier=classifier.name,
        model_version=version,
        trending=trending,
        scored=scored,
        score_samples=samples,
        probability_scores=classifier.name != EMBEDDING,
        evaluated_labels=evaluated_labels(settings, runs, card),
        latest_ndcg=latest,
        recorded_ndcg=recorded,
        model_created=_parse_time(card.created) if card is not None else None,
        z_offset=service.calibration.threshold,
    )
    return data, warnings, classifier


def act(settings: Settings, report: MonitorReport, service: ScoringLoop) -> dict[str, Any]:
    """reclassify → score the trending labels now; retrain → train, gate and promote (then re-score)."""
    if report.decision == "reclassify":
        refreshed = service.refresh()
        return {"action": "reclassify", "ok": not refreshed.failed, **refreshed.to_dict()}
    if report.decision == "retrain":
        try:
            from freshrank.train.lifecycle import retrain_and_promote
        except ImportError as exc:
            return {"action": "retrain", "ok": False, "error": f"training is not installed: {exc}"}
        result = retrain_and_promote(settings)
        return {"action": "retrain", "ok": True, **result.to_dict()}
    return {"action": "none", "ok": True}


def publish(report: MonitorReport, data: MonitorInput) -> None:
    """Set the monitor's Prometheus gauges."""
    from freshrank.metrics import MODEL_AGE_SECONDS, MONITOR_DECISION, TRENDING_LABELS

    MONITOR_DECISION.set({"ok": 0, "reclassify": 1, "retrain": 2}[report.decision])
    TRENDING_LABELS.set(len(data.trending))
    if data.model_created is not None:
        MODEL_AGE_SECONDS.set((data.now - data.model_created).total_seconds())
