"""A label write on OpenSearch / Elasticsearch killed in the middle of its bulk (a real ``kill -9`` of the
writing process): the scores it left on the movies are never searched (no registry entry names them) and are
swept by the next retention pass (``refresh`` / ``freshrank gc``), once older than the write guard; a
replaced generation is removed by the write that replaced it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freshrank.catalog.models import Movie
from freshrank.loop.retention import Doomed, collect
from freshrank.search.base import SearchRequest
from freshrank.search.elasticsearch import ElasticsearchBackend
from freshrank.search.opensearch import OpenSearchBackend
from tests.conftest import SMALL_MOVIES
from tests.search.test_contract import ELASTICSEARCH, OPENSEARCH, close_test_backend, open_test_backend

ENGINES = [
    pytest.param("opensearch", marks=pytest.mark.opensearch),
    pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
]
VERSION = "v-interrupted"
# Scores for 200,000 movie ids, of which the index holds a handful: ~100 bulk requests, the first writing
# the real movies, the rest answered 404 (allowed): seconds of work to be killed in the middle of.
WRITER = """
import sys
from freshrank.search import open_backend
open_backend(sys.argv[1]).put_scores(sys.argv[2], "interrupted", {i: 0.5 for i in range(1, 200_001)})
"""

Lucene = OpenSearchBackend | ElasticsearchBackend


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Lucene, str]]:
    """(a backend on a fresh index holding the small catalogue, its URL with credentials)."""
    backend = open_test_backend(request.param, tmp_path)
    assert isinstance(backend, OpenSearchBackend | ElasticsearchBackend)
    backend.index([Movie.model_validate(row) for row in SMALL_MOVIES])
    server = OPENSEARCH if request.param == "opensearch" else ELASTICSEARCH
    yield backend, f"{request.param}://{server}/{backend.index_name}"
    close_test_backend(backend)


def trend_of(backend: Lucene, movie_id: int) -> dict[str, Any]:
    """The movie's stored features, read in real time (no refresh needed)."""
    source = backend.client.get(index=backend.index_name, id=str(movie_id))["_source"]
    return dict(source.get("trend") or {})


def kill_mid_bulk(backend: Lucene, url: str, published: set[str]) -> None:
    """Start the writer and SIGKILL it as soon as its first bulk request reached movie 1."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, VERSION], env=env)
    try:
        deadline = time.monotonic() + 120
        while not set(trend_of(backend, 1)) - published:
            assert writer.poll() is None, "the writer ended before it wrote anything"
            assert time.monotonic() < deadline, "the writer never reached movie 1"
            time.sleep(0.02)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)


def test_scores_of_a_write_killed_mid_bulk_are_swept_by_the_next_retention_pass(
    engine: tuple[Lucene, str],
) -> None:
    backend, url = engine
    backend.put_scores(VERSION, "kept", {1: 0.9, 2: 0.4})
    kept = set(trend_of(backend, 1))
    kill_mid_bulk(backend, url, kept)
    assert backend.scored_labels(VERSION) == {"kept"}, "the writer finished before it was killed"
    orphan = set(trend_of(backend, 1)) - kept
    assert len(orphan) == 1  # movie 1 holds the interrupted generation, which no search names
    # A pass with the default guard leaves a write this young alone (it could still be running) ...
    assert collect(backend, [], batch=2_000, entries=1).swept == {"features": 0, "movies": 0}
    assert set(trend_of(backend, 1)) == kept | orphan
    # ... and sweeps it once it is older than the guard (0 s here).
    swept = collect(backend, [], batch=2_000, entries=1, sweep_after_s=0).swept
    assert swept["features"] == 1 and swept["movies"] >= 1
    assert all(set(trend_of(backend, movie["id"])) <= kept for movie in SMALL_MOVIES)  # type: ignore[arg-type]
    hits = backend.search(SearchRequest(text="", labels=("kept",), model_version=VERSION, limit=2)).hits
    assert [hit.id for hit in hits] == [1, 2] and hits[0].trend_scores["kept"] == pytest.approx(0.9, rel=0.01)
    backend.put_scores(VERSION, "interrupted", {3: 0.7})  # the label is written again, whole
    assert backend.scored_labels(VERSION) == {"kept", "interrupted"}


def test_a_replaced_generation_is_removed_by_the_write_that_replaced_it(engine: tuple[Lucene, str]) -> None:
    backend, _ = engine
    backend.put_scores(VERSION, "space", {1: 0.9, 2: 0.1})
    first = set(trend_of(backend, 1))
    backend.put_scores(VERSION, "space", {1: 0.8, 2: 0.2})
    second = set(trend_of(backend, 1))
    assert len(first) == len(second) == 1 and first != second
    assert len(trend_of(backend, 2)) == 1
    assert collect(backend, [], batch=2_000, entries=1, sweep_after_s=0).swept == {"features": 0, "movies": 0}


def test_retention_merges_away_the_deleted_documents_its_deletes_leave(engine: tuple[Lucene, str]) -> None:
    backend, _ = engine
    backend.put_scores(VERSION, "gone", {1: 0.9, 2: 0.4, 3: 0.2})
    backend.put_scores(VERSION, "stays", {1: 0.5})
    gone = next(e for e in backend.score_entries() if e.label == "gone")
    report = collect(backend, [Doomed(gone, "test")], batch=2_000, entries=2)
    assert [d["label"] for d in report.deleted] == ["gone"] and report.rows == 3
    assert report.compacted >= 3  # each rewritten movie left a deleted document behind
    assert report.bytes_before and report.bytes_after  # the index's size, before and after
    assert backend.scored_labels(VERSION) == {"stays"}
    # Soft deletes are kept until the shard's retention lease moves on (~30 s on an idle index): the next
    # passes merge them away.
    deadline = time.monotonic() + 120
    while backend.compact():
        assert time.monotonic() < deadline, "the deleted documents were never merged away"
        time.sleep(3)
    assert backend._index_stats()["docs"]["deleted"] == 0
