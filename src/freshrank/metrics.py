"""Prometheus metrics (a leaf module): the search API, the loop, the evaluator and the monitor update them.

Import the objects and update them where the work happens, e.g.::

    from freshrank.metrics import SEARCH_LATENCY
    with SEARCH_LATENCY.labels(backend="sqlite").time():
        page = backend.search(request)

They live in the default ``prometheus_client`` registry, which the web API's ``/metrics`` exposes
(:func:`exposition`; with several server processes, ``multiprocess_metrics`` makes them shared files that
``/metrics`` sums over the processes, a gauge showing the value any process set last). A CLI command
writes them for node-exporter's textfile collector on exit (:func:`write_textfile`, when
``metrics_textfile_dir`` is set).
Metric names are the contract with ``deploy/grafana/freshrank.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    write_to_textfile,
)
from prometheus_client.metrics_core import Metric

# Search latencies are milliseconds-scale on SQLite and tens of ms on OpenSearch.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REFRESH_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MOSTRECENT: Final = "mostrecent"  # a gauge across server processes: the value any of them set last

SEARCH_LATENCY = Histogram(
    "freshrank_search_request_seconds",
    "Latency of one search request (backend query plus response building).",
    ["backend", "endpoint"],
    buckets=_LATENCY_BUCKETS,
)
SEARCH_REQUESTS = Counter(
    "freshrank_search_requests_total", "Search requests served, by outcome.", ["backend", "status"]
)
CLASSIFICATION_PAIRS = Counter(
    "freshrank_classification_pairs_total",
    "(movie, label) pairs scored by a classifier; rate() of it is pairs per second.",
    ["classifier"],
)
CLASSIFICATION_PAIRS_PER_SECOND = Gauge(
    "freshrank_classification_pairs_per_second",
    "Throughput of the last classification batch (pairs / wall seconds).",
    ["classifier"],
    multiprocess_mode=MOSTRECENT,
)
REFRESH_DURATION = Histogram(
    "freshrank_refresh_duration_seconds",
    "Wall time of one refresh (score new labels and write them into the index).",
    buckets=_REFRESH_BUCKETS,
)
REFRESH_LAST_SUCCESS = Gauge(
    "freshrank_refresh_last_success_timestamp_seconds",
    "Unix time of the last refresh that finished.",
    multiprocess_mode=MOSTRECENT,
)
REFRESH_LABELS_SCORED = Counter(
    "freshrank_refresh_labels_scored_total", "Labels newly scored by refresh runs.", ["model_version"]
)
TRENDING_LABELS = Gauge(
    "freshrank_trending_labels",
    "Number of labels in the current trend snapshot.",
    multiprocess_mode=MOSTRECENT,
)
NDCG_AT_10 = Gauge(
    "freshrank_ndcg_at_10",
    "Latest nDCG@10 of the trend-boosted ranking per judged trend (system=classifier|baseline).",
    ["trend", "genre", "system"],
    multiprocess_mode=MOSTRECENT,
)
EVALUATION_MEAN = Gauge(
    "freshrank_evaluation_mean",
    "Mean of the latest evaluation run per metric (ndcg@10, p@10, recall@100, judged@10).",
    ["metric", "system"],
    multiprocess_mode=MOSTRECENT,
)
MONITOR_DECISION = Gauge(
    "freshrank_monitor_decision",
    "Latest freshness decision: 0 ok, 1 reclassify, 2 retrain.",
    multiprocess_mode=MOSTRECENT,
)
MODEL_AGE_SECONDS = Gauge(
    "freshrank_model_age_seconds", "Age of the serving (champion) model.", multiprocess_mode=MOSTRECENT
)
COMPONENT_HEALTHY = Gauge(
    "freshrank_component_healthy",
    "1 when a component (search, trends, classifier) answered its last health check, 0 when degraded.",
    ["component"],
    multiprocess_mode=MOSTRECENT,
)

__all__ = [
    "COMPONENT_HEALTHY",
    "CLASSIFICATION_PAIRS",
    "CLASSIFICATION_PAIRS_PER_SECOND",
    "EVALUATION_MEAN",
    "MODEL_AGE_SECONDS",
    "MONITOR_DECISION",
    "NDCG_AT_10",
    "REFRESH_DURATION",
    "REFRESH_LABELS_SCORED",
    "REFRESH_LAST_SUCCESS",
    "REGISTRY",
    "SEARCH_LATENCY",
    "SEARCH_REQUESTS",
    "TRENDING_LABELS",
    "exposition",
    "multiprocess_metrics",
    "record_classification",
    "write_textfile",
]


@contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    """Metrics shared by the server processes started inside: ``$PROMETHEUS_MULTIPROC_DIR`` (a fresh temp
    dir, removed afterwards, unless one is set). Processes must start after this (they read it on import)."""
    given = os.environ.get(MULTIPROC_ENV)
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="freshrank-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        if not given:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(directory, ignore_errors=True)


def exposition() -> bytes:
    """The text format of this process's metrics, or of every server process's in multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def record_classification(classifier: str, pairs: int, seconds: float) -> None:
    """Count ``pairs`` scored in ``seconds`` by ``classifier`` (counter and last-batch throughput)."""
    CLASSIFICATION_PAIRS.labels(classifier=classifier).inc(pairs)
    if seconds > 0:
        CLASSIFICATION_PAIRS_PER_SECOND.labels(classifier=classifier).set(pairs / seconds)


class _Labelled:
    """The freshrank_* families of a registry, every sample with extra labels (one set per CLI command)."""

    def __init__(self, registry: CollectorRegistry, labels: dict[str, str]) -> None:
        self.registry, self.labels = registry, labels

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            if not family.name.startswith("freshrank_"):
                continue  # process_* / python_*: node-exporter has its own
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [s._replace(labels={**s.labels, **self.labels}) for s in family.samples]
            yield labelled


def write_textfile(directory: Path, command: str, registry: CollectorRegistry = REGISTRY) -> Path:
    """Write this process's metrics for node-exporter's textfile collector: ``freshrank_<command>.prom``.

    A CLI command's metrics (refresh, evaluate, monitor) would vanish with the process; node-exporter serves
    the file until the next run replaces it (atomically). The ``command`` label keeps files apart.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"freshrank_{command}.prom"
    write_to_textfile(str(path), _Labelled(registry, {"command": command}))
    return path
