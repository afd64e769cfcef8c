"""Search engines side by side in one run: SQLite FTS5 (embedded baseline), OpenSearch and Elasticsearch.

On the shared catalogue (``movies.jsonl.gz``), each engine gets a fresh index and is timed on: indexing the
whole catalogue, writing one label's scores, and searches with 20 trending labels (p50/p99 over
``FRESHRANK_BENCH_ENGINE_QUERIES`` queries, default 300, each a title word plus the 20 labels). The scores
are ``bench/searchdata.py``'s, calibrated like production (a few % of the movies > 0 per label), the labels
its 20 trend labels. It also reports how often the engines return the same top 10 as OpenSearch for the same
queries. Servers: the URLs the tests use (scripts/services.sh writes them).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshrank.bench.searchdata import TREND_LABELS, TrendScores
from freshrank.catalog.loader import load_catalog
from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.console import err
from freshrank.search.base import SearchBackend, SearchRequest

VERSION = "bench-engines"


def _engines(tmp: Path) -> dict[str, Callable[[], SearchBackend]]:
    from freshrank.search.elasticsearch import ElasticsearchBackend
    from freshrank.search.opensearch import OpenSearchBackend
    from freshrank.search.sqlite import SqliteBackend

    opensearch = os.environ.get("FRESHRANK_TEST_OPENSEARCH", "127.0.0.1:9200")
    elastic = os.environ.get("FRESHRANK_TEST_ELASTICSEARCH", "elastic:freshrank-local@127.0.0.1:9201")
    name = f"freshrank-bench-{uuid.uuid4().hex[:8]}"
    return {
        "sqlite": lambda: SqliteBackend(f"sqlite:///{tmp / 'bench.db'}"),
        "opensearch": lambda: OpenSearchBackend(f"opensearch://{opensearch}/{name}", timeout=120),
        "elasticsearch": lambda: ElasticsearchBackend(f"elasticsearch://{elastic}/{name}", timeout=120),
    }


def _queries(movies: list[Movie], count: int) -> list[str]:
    rng = random.Random(7)
    words = [w for m in movies for w in m.title.split() if len(w) > 3 and w.isalpha()]
    return [rng.choice(words) for _ in range(count)]


def _measure(
    engine: SearchBackend, movies: list[Movie], scores: TrendScores, queries: list[str]
) -> dict[str, Any]:
    start = time.perf_counter()
    engine.index(movies)
    index_s = time.perf_counter() - start
    writes = []
    for label in TREND_LABELS:
        values = scores.scores(label)
        start = time.perf_counter()
        engine.put_scores(VERSION, label, values)
        writes.append(time.perf_counter() - start)
    labels = tuple(TREND_LABELS)
    latencies, tops = [], []
    for text in queries:
        start = time.perf_counter()
        page = engine.search(SearchRequest(text=text, labels=labels, model_version=VERSION, limit=10))
        latencies.append(time.perf_counter() - start)
        tops.append([hit.id for hit in page.hits])
    latencies.sort()
    return {
        "index_s": round(index_s, 2),
        "label_write_s": round(writes[0], 3),
        "label_write_median_s": round(statistics.median(writes), 3),
        "label_write_max_s": round(max(writes), 3),
        "search_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "search_p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "tops": tops,
    }


def run() -> dict[str, Any]:
    settings = Settings()
    movies = load_catalog(settings.data_dir / "movies.jsonl.gz").movies
    queries = _queries(movies, int(os.environ.get("FRESHRANK_BENCH_ENGINE_QUERIES", 300)))
    scores = TrendScores(movies)
    load = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="freshrank-bench-engines-") as tmp:
        for name, opener in _engines(Path(tmp)).items():
            engine = opener()
            try:
                results[name] = _measure(engine, movies, scores, queries)
            finally:
                if hasattr(engine, "drop"):
                    engine.drop()
                engine.close()  # type: ignore[attr-defined]
            shown = {key: value for key, value in results[name].items() if key != "tops"}
            err.print(f"engines: {name}: {shown}")
    tops = {name: got.pop("tops") for name, got in results.items()}
    figures: dict[str, Any] = {"engines_movies": len(movies), "engines_queries": len(queries)}
    for name, got in results.items():
        figures.update({f"engines_{name}_{key}": value for key, value in got.items()})
        if name != "opensearch":
            same = sum(a == b for a, b in zip(tops[name], tops["opensearch"], strict=True))
            figures[f"engines_{name}_same_top10_as_opensearch"] = round(same / len(queries), 3)
    for key in ("index_s", "label_write_s", "search_p99_ms"):
        ratio = results["elasticsearch"][key] / max(results["opensearch"][key], 1e-9)
        figures[f"engines_elasticsearch_over_opensearch_{key}"] = round(ratio, 2)
        err.print(f"engines: elasticsearch/opensearch {key} = {ratio:.2f}x")
    figures["engines_load_average"] = round(load, 2)
    return figures
