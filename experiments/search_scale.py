"""Search at catalogue sizes beyond the real one: generated movies, 20 labels of calibrated scores.

    FRESHRANK_DATA_DIR=/work/shared/data PYTHONPATH=src nice -n 10 \
        python experiments/search_scale.py sqlite,opensearch 10000 100000 1000000

Per size, every named backend in the same run: the catalogue is generated chunk by chunk
(``bench/generated.py``, from the real catalogue's words, names and field lengths) and each chunk goes to
every backend (``index``, timed per backend; OpenSearch refreshes after each chunk); then the 20 trend
labels' scores (``put_scores`` of every movie's calibrated score, of which the backends write only those
> 0; OpenSearch: bulk without refresh, one explicit ``_refresh``, then the registry entry with
``refresh=true``); then search p50/p99 over the bench's mixed query set (``freshrank.bench.search``),
boosted with the 20 labels and not. OpenSearch: the server of ``FRESHRANK_BENCH_OPENSEARCH`` (default
127.0.0.1:9200), a private index deleted at the end. One JSON line per (size, backend) on stdout, each with
the load average at the end of each phase.
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
from typing import Any

from freshrank.bench.generated import GeneratedCatalog, Vocabulary
from freshrank.bench.search import OPENSEARCH, _load, _pct, latencies, mixed_requests, write_labels
from freshrank.bench.searchdata import TREND_LABELS
from freshrank.catalog.loader import load_catalog
from freshrank.config import Settings
from freshrank.search.base import SearchBackend

VERSION = "scale-v1+z2"


def open_backend(kind: str, directory: Path) -> SearchBackend:
    if kind == "sqlite":
        from freshrank.search.sqlite import SqliteBackend

        return SqliteBackend(f"sqlite:///{directory / 'scale.db'}")
    from freshrank.search.opensearch import OpenSearchBackend

    return OpenSearchBackend(f"opensearch://{OPENSEARCH}/freshrank-scale-{uuid.uuid4().hex[:10]}")


def size_mb(kind: str, backend: SearchBackend, directory: Path) -> float:
    if kind == "sqlite":
        return round(sum(p.stat().st_size for p in directory.iterdir()) / 1e6, 1)
    return round(backend.stored_bytes() / 1e6, 1)  # type: ignore[attr-defined]


def index_all(catalog: GeneratedCatalog, backends: dict[str, SearchBackend]) -> dict[str, Any]:
    """Each chunk generated once, then indexed by every backend; seconds per backend and generating."""
    spent = dict.fromkeys(backends, 0.0)
    generate_s = 0.0
    started = time.perf_counter()
    for chunk in catalog.chunks():
        generate_s += time.perf_counter() - started
        for kind, backend in backends.items():
            t0 = time.perf_counter()
            backend.index(chunk)
            spent[kind] += time.perf_counter() - t0
        started = time.perf_counter()
    return {"generate_s": round(generate_s, 1), **{k: round(s, 1) for k, s in spent.items()}}


def measure(kinds: list[str], size: int, vocabulary: Vocabulary) -> list[dict[str, Any]]:
    catalog = GeneratedCatalog(vocabulary, size)
    with tempfile.TemporaryDirectory(dir=os.environ.get("FRESHRANK_SCALE_TMP")) as tmp:
        backends = {kind: open_backend(kind, Path(tmp)) for kind in kinds}
        try:
            indexed = index_all(catalog, backends)
            index_load = _load()
            t0 = time.perf_counter()
            scores = catalog.trend_scores()
            scores_s = round(time.perf_counter() - t0, 1)
            return [
                run_backend(kind, backend, scores, Path(tmp))
                | {"movies": size, "index_s": indexed[kind], "index_load": index_load}
                | {"generate_s": indexed["generate_s"], "trend_scores_s": scores_s}
                for kind, backend in backends.items()
            ]
        finally:
            for backend in backends.values():
                if hasattr(backend, "drop"):
                    backend.drop()
                backend.close()  # type: ignore[attr-defined]


def run_backend(kind: str, backend: SearchBackend, scores: Any, directory: Path) -> dict[str, Any]:
    writes = write_labels(backend, VERSION, scores)
    write_load = _load()
    positive = sum(int((scores.calibrated(label) > 0).sum()) for label in TREND_LABELS)
    cold = first_searches(backend)
    size = len(scores.ids)
    samples = latencies(backend, VERSION, rounds=2 if size < 500_000 else 1)
    return {
        "backend": kind,
        "label_write_s_median": round(statistics.median(writes), 3),
        "label_write_s_max": round(max(writes), 3),
        "label_write_s": [round(w, 2) for w in writes],
        "label_write_movies_per_label": round(positive / len(TREND_LABELS)),
        "label_write_load": write_load,
        "search_p50_ms": round(_pct(samples["boosted"], 0.5), 2),
        "search_p99_ms": round(_pct(samples["boosted"], 0.99), 2),
        "noboost_p50_ms": round(_pct(samples["plain"], 0.5), 2),
        "noboost_p99_ms": round(_pct(samples["plain"], 0.99), 2),
        "first_search_p50_ms": round(_pct(cold, 0.5), 2),
        "first_search_max_ms": round(max(cold), 1),
        "store_mb": size_mb(kind, backend, directory),
        "search_load": _load(),
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
    kinds, sizes = argv[0].split(","), [int(s) for s in argv[1:]]
    vocabulary = Vocabulary.from_movies(load_catalog(Settings().movies_path).movies)
    for size in sizes:
        for row in measure(kinds, size, vocabulary):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
