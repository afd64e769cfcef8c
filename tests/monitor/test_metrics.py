"""The Prometheus metrics and the Grafana dashboard that reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest

from freshrank import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "freshrank.json"


def _exposed_names() -> set[str]:
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.update(sample.name for sample in metric.samples)
    return names


def test_updates_show_in_the_exposition() -> None:
    metrics.SEARCH_LATENCY.labels(backend="test", endpoint="/search").observe(0.012)
    metrics.record_classification("test-clf", pairs=1000, seconds=0.5)
    metrics.NDCG_AT_10.labels(trend="#'; DROP TABLE", genre="", system="classifier").set(0.42)
    text = generate_latest().decode()
    assert 'freshrank_search_request_seconds_bucket{backend="test",endpoint="/search",le="0.025"} 1.0' in text
    assert 'freshrank_classification_pairs_per_second{classifier="test-clf"} 2000.0' in text
    assert 'freshrank_ndcg_at_10{genre="",system="classifier",trend="#\'; DROP TABLE"} 0.42' in text


def test_dashboard_reads_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    used = {name for expr in exprs for name in re.findall(r"\bfreshrank_[a-z0-9_]+", expr)}
    metrics.SEARCH_REQUESTS.labels(backend="test", status="ok").inc()  # labelled series appear once used
    metrics.REFRESH_DURATION.observe(1.0)
    metrics.REFRESH_LABELS_SCORED.labels(model_version="v").inc()
    metrics.EVALUATION_MEAN.labels(metric="ndcg@10", system="classifier").set(0.5)
    for gauge in (metrics.MONITOR_DECISION, metrics.MODEL_AGE_SECONDS, metrics.TRENDING_LABELS,
                  metrics.REFRESH_LAST_SUCCESS):  # fmt: skip
        gauge.set(1)
    missing = used - _exposed_names()
    assert not missing, f"dashboard queries unknown metrics: {sorted(missing)}"
    assert {p["gridPos"]["y"] for p in dashboard["panels"]}  # every panel is placed
