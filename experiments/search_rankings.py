"""Record the rankings of both search backends on the full catalogue, to compare two versions of the code.

    PYTHONPATH=src python experiments/search_rankings.py /tmp/rankings-before.json [sqlite|opensearch ...]
    python experiments/search_rankings.py --diff /tmp/rankings-before.json /tmp/rankings-after.json

Queries × genres × label sets × pages, with 20 labels of calibrated synthetic scores
(``freshrank.bench.searchdata``). Each entry keeps the ids and scores of the page and the total.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from freshrank.bench.searchdata import TREND_LABELS, TrendScores
from freshrank.catalog.loader import load_catalog
from freshrank.config import Settings
from freshrank.search.base import SearchBackend, SearchRequest

VERSION = "record-v1+z2"
TEXTS = ("", "love", "love story", "santa", "the dark knight returns", "space war", "zzqx")
GENRES = (None, "Family", "Drama", "Horror")
LABEL_SETS = ((), TREND_LABELS[:1], TREND_LABELS[:5], TREND_LABELS)
PAGES = ((0, 10), (40, 20), (1000, 10))


def cases() -> list[SearchRequest]:
    return [
        SearchRequest(text=t, genre=g, labels=ls, model_version=VERSION, limit=lim, offset=off)
        for t, g, ls, (off, lim) in itertools.product(TEXTS, GENRES, LABEL_SETS, PAGES)
    ]


def open_backend(kind: str, directory: Path) -> SearchBackend:
    if kind == "sqlite":
        from freshrank.search.sqlite import SqliteBackend

        return SqliteBackend(f"sqlite:///{directory / 'search.db'}")
    from freshrank.search.opensearch import OpenSearchBackend

    return OpenSearchBackend(f"opensearch://127.0.0.1:9200/freshrank-rank-{uuid.uuid4().hex[:10]}")


def record(kind: str) -> dict[str, Any]:
    movies = load_catalog(Settings().movies_path).movies
    scores = TrendScores(movies)
    with tempfile.TemporaryDirectory() as tmp:
        backend = open_backend(kind, Path(tmp))
        try:
            started = time.perf_counter()
            backend.index(movies)
            print(f"{kind}: indexed in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            for label in TREND_LABELS:
                started = time.perf_counter()
                backend.put_scores(VERSION, label, scores.scores(label))
                print(f"{kind}: {label} in {time.perf_counter() - started:.2f}s", file=sys.stderr)
            out = {}
            for request in cases():
                page = backend.search(request)
                key = json.dumps([request.text, request.genre, len(request.labels), request.offset])
                out[key] = {
                    "total": page.total,
                    "ids": [hit.id for hit in page.hits],
                    "scores": [hit.score for hit in page.hits],
                }
            return out
        finally:
            if hasattr(backend, "drop"):
                backend.drop()


def diff(before_path: str, after_path: str) -> int:
    before, after = json.loads(Path(before_path).read_text()), json.loads(Path(after_path).read_text())
    bad = 0
    for kind in before:
        for key, old in before[kind].items():
            new = after.get(kind, {}).get(key)
            if new != old:  # ids, total and scores, bit for bit
                bad += 1
                print(kind, key, old, new)
        print(f"{kind}: {len(before[kind])} cases compared")
    print(f"{bad} differ")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--diff"]:
        return diff(argv[1], argv[2])
    kinds = argv[1:] or ["sqlite", "opensearch"]
    Path(argv[0]).write_text(json.dumps({kind: record(kind) for kind in kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
