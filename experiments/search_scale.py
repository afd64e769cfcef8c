"""Search at catalogue sizes beyond the real one: generated movies, 20 labels of calibrated scores.

    PYTHONPATH=src nice -n 10 python experiments/search_scale.py sqlite 10000 100000 1000000
    PYTHONPATH=src nice -n 10 python experiments/search_scale.py opensearch 10000 100000

Per size: index time, label-write time (median of the 20 ``put_scores``), and search p50/p99 over the bench's
mixed query set (``freshrank.bench.search``), boosted and not. One JSON line per size on stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from freshrank.bench.search import _pct, latencies, mixed_requests, write_labels
from freshrank.bench.searchdata import TREND_LABELS, TrendScores, generated_movies
from freshrank.search.base import SearchBackend

VERSION = "scale-v1+z2"


def open_backend(kind: str, directory: Path) -> SearchBackend:
    if kind == "sqlite":
        from freshrank.search.sqlite import SqliteBackend

        return SqliteBackend(f"sqlite:///{directory / 'scale.db'}")
    from freshrank.search.opensearch import OpenSearchBackend

    return OpenSearchBackend(f"opensearch://127.0.0.1:9200/freshrank-scale-{uuid.uuid4().hex[:10]}")


def measure(kind: str, size: int) -> dict[str, object]:
    movies = list(generated_movies(size))
    scores = TrendScores(movies)
    with tempfile.TemporaryDirectory() as tmp:
        backend = open_backend(kind, Path(tmp))
        try:
            started = time.perf_counter()
            for start in range(0, size, 50_000):
                backend.index(movies[start : start + 50_000])
            index_s = time.perf_counter() - started
            writes = write_labels(backend, VERSION, scores)
            cold = first_searches(backend)
            samples = latencies(backend, VERSION, rounds=2 if size < 500_000 else 1)
        finally:
            if hasattr(backend, "drop"):
                backend.drop()
            backend.close()  # type: ignore[attr-defined]
        db_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6 if kind == "sqlite" else None
    return {
        "backend": kind,
        "movies": size,
        "index_s": round(index_s, 1),
        "label_write_s_median": round(statistics.median(writes), 3),
        "label_write_s_max": round(max(writes), 3),
        "search_p50_ms": round(_pct(samples["boosted"], 0.5), 1),
        "search_p99_ms": round(_pct(samples["boosted"], 0.99), 1),
        "noboost_p50_ms": round(_pct(samples["plain"], 0.5), 1),
        "noboost_p99_ms": round(_pct(samples["plain"], 0.99), 1),
        "first_search_p50_ms": round(_pct(cold, 0.5), 1),
        "first_search_max_ms": round(max(cold), 1),
        "db_mb": db_mb,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def first_searches(backend: SearchBackend) -> list[float]:
    """Milliseconds of each boosted query's first run (SQLite: its words' scores not yet cached)."""
    out = []
    for request in mixed_requests(VERSION, TREND_LABELS):
        started = time.perf_counter()
        backend.search(request)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str]) -> int:
    kind, sizes = argv[0], [int(s) for s in argv[1:]]
    for size in sizes:
        print(json.dumps(measure(kind, size)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
