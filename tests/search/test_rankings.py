"""Boosted rankings on the full catalogue equal an independent reference computed in numpy, on every backend.

The reference takes each backend's own text scores (its no-boost search of the same text and genre) and adds
``boost_weight * sum(label weight * calibrated score)`` (weights 1.0 unless the request gives them) computed
here from the scores that were handed to ``put_scores``
(zeros included), then sorts by score and id. So the test pins what sparse storage must not change: which
movies are candidates, how the boost adds up, ties by id, paging and the exact ``total``.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from freshrank.bench.searchdata import TREND_LABELS, TrendScores
from freshrank.catalog.loader import load_catalog
from freshrank.search.base import SearchBackend, SearchRequest
from freshrank.search.elasticsearch import ElasticsearchBackend
from freshrank.search.lucene import label_key
from freshrank.search.opensearch import OpenSearchBackend
from freshrank.search.sqlite import SqliteBackend
from freshrank.search.weights import trend_weights
from freshrank.trends.base import Trend
from tests.conftest import SHARED_DATA
from tests.search.test_contract import BACKENDS, close_test_backend, open_test_backend

VERSION = "rankings-v1+z2"
ZERO_LABEL = "nothing stands out"  # scored, every score 0
TEXTS = ("", "love", "love story", "the dark knight returns")
GENRES = (None, "Family", "Drama")
LABEL_SETS = (TREND_LABELS[:1], TREND_LABELS[:5], (*TREND_LABELS, ZERO_LABEL, "never scored"))
# Label weights as the current trends give them (search.weights: a softmax over burst strengths).
WEIGHTED = trend_weights(
    [Trend(f"#t{i}", label, 30.0 - 3 * i, 1, 1.0) for i, label in enumerate((*TREND_LABELS[:6], ZERO_LABEL))],
    temperature=2.0,
)
CASES = [(labels, ()) for labels in LABEL_SETS] + [(tuple(WEIGHTED), tuple(WEIGHTED.values()))]
PAGES = ((0, 10), (40, 20), (1000, 10))
WEIGHT = 0.7
PAGE = 10_000


class Catalogue:
    """One backend holding the full catalogue and the calibrated scores of every trend label."""

    def __init__(self, backend: SearchBackend, scores: TrendScores) -> None:
        self.backend = backend
        self.scores = scores
        self.calibrated = {label: scores.calibrated(label) for label in TREND_LABELS}
        self.calibrated[ZERO_LABEL] = np.zeros(len(scores.ids))
        self.position = {movie_id: i for i, movie_id in enumerate(scores.ids)}
        # Lucene keeps a rank feature's float with 9 mantissa bits; SQLite keeps the double.
        self.exact = getattr(backend, "name", "") == "sqlite"

    def engine_value(self, values: np.ndarray) -> np.ndarray:
        if self.exact:
            return values
        bits = values.astype(np.float32).view(np.int32) >> 15 << 15
        return bits.view(np.float32).astype(np.float64)

    def stored(self, label: str, movie_id: int) -> float:
        """The exact score handed to ``put_scores`` (0 for a label never scored)."""
        values = self.calibrated.get(label)
        return 0.0 if values is None else float(values[self.position[movie_id]])

    def text_scores(self, text: str, genre: str | None) -> dict[int, float]:
        """Every candidate's text score, from the backend's own no-boost search, all pages."""
        found: dict[int, float] = {}
        offset, total = 0, 1
        while offset < total:
            page = self.backend.search(SearchRequest(text=text, genre=genre, limit=PAGE, offset=offset))
            found.update((hit.id, hit.text_score) for hit in page.hits)
            offset, total = offset + PAGE, page.total
        assert len(found) == total
        return found

    def reference(
        self, text_scores: dict[int, float], labels: tuple[str, ...], weights: tuple[float, ...] = ()
    ) -> dict[int, float]:
        boost = np.zeros(len(self.scores.ids))
        for label, weight in zip(labels, weights or (1.0,) * len(labels), strict=True):
            if label in self.calibrated:
                boost += weight * self.engine_value(self.calibrated[label])
        return {i: t + WEIGHT * float(boost[self.position[i]]) for i, t in text_scores.items()}


@pytest.fixture(scope="module", params=BACKENDS)
def catalogue(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalogue]:
    path = SHARED_DATA / "movies.jsonl.gz"
    if not path.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set FRESHRANK_DATA_DIR")
    movies = load_catalog(path).movies
    backend = open_test_backend(request.param, Path(tmp_path_factory.mktemp("rankings")))
    try:
        backend.index(movies)
        scores = TrendScores(movies)
        for label in TREND_LABELS:
            backend.put_scores(VERSION, label, scores.scores(label))
        backend.put_scores(VERSION, ZERO_LABEL, dict.fromkeys(scores.ids, 0.0))
        yield Catalogue(backend, scores)
    finally:
        close_test_backend(backend)


def test_a_label_whose_scores_are_all_zero_is_still_scored(catalogue: Catalogue) -> None:
    assert catalogue.backend.scored_labels(VERSION) == {*TREND_LABELS, ZERO_LABEL}
    page = catalogue.backend.search(SearchRequest(labels=(ZERO_LABEL,), model_version=VERSION, limit=3))
    assert [hit.id for hit in page.hits] == sorted(catalogue.scores.ids)[:3]
    assert all(hit.trend_scores == {ZERO_LABEL: 0.0} and hit.score == 0.0 for hit in page.hits)


@pytest.mark.parametrize(("text", "genre"), list(itertools.product(TEXTS, GENRES)))
def test_boosted_rankings_equal_the_reference(catalogue: Catalogue, text: str, genre: str | None) -> None:
    text_scores = catalogue.text_scores(text, genre)
    eps = 1e-9 if catalogue.exact else 2e-5
    for (labels, weights), (offset, limit) in itertools.product(CASES, PAGES):
        reference = catalogue.reference(text_scores, labels, weights)
        order = sorted(reference, key=lambda i: (-reference[i], i))
        request = SearchRequest(
            text=text, genre=genre, labels=labels, model_version=VERSION, limit=limit, offset=offset,
            boost_weight=WEIGHT, label_weights=weights,
        )  # fmt: skip
        page = catalogue.backend.search(request)
        case = f"{text!r} {genre} {len(labels)} labels{' weighted' if weights else ''}, offset {offset}"
        assert page.total == len(reference), case
        got = [hit.id for hit in page.hits]
        expected = order[offset : offset + limit]
        assert len(got) == len(expected) == len(set(got)), case
        for hit, want in zip(page.hits, expected, strict=True):
            # Only scores equal within float noise may swap places (on Lucene: its float32 sums).
            assert hit.id == want or abs(reference[hit.id] - reference[want]) <= eps, case
            assert hit.score == pytest.approx(reference[hit.id], rel=eps, abs=eps), case
            stored = {label: catalogue.stored(label, hit.id) for label in labels}
            assert hit.trend_scores == pytest.approx(stored, rel=1e-12, abs=1e-12), case
        for before, after in itertools.pairwise(page.hits):
            assert before.score > after.score or (before.score == after.score and before.id < after.id), case


def test_only_positive_scores_are_stored(catalogue: Catalogue) -> None:
    backend = catalogue.backend
    for label in (TREND_LABELS[0], TREND_LABELS[-1], ZERO_LABEL):
        positive = int((catalogue.calibrated[label] > 0).sum())
        assert stored_rows(backend, label) == positive
    assert 0 < stored_rows(backend, TREND_LABELS[0]) < len(catalogue.scores.ids) / 10


def stored_rows(backend: SearchBackend, label: str) -> int:
    """How many movies hold a stored score for ``label`` (read from the backend's own storage)."""
    if isinstance(backend, SqliteBackend):
        with closing(sqlite3.connect(backend.path)) as db:
            query = "SELECT COUNT(*) FROM trend_scores WHERE model_version = ? AND label = ?"
            return int(db.execute(query, (VERSION, label)).fetchone()[0])
    if isinstance(backend, OpenSearchBackend):
        entry = backend.client.get(index=backend.registry_name, id=label_key(VERSION, label))["_source"]
        query = {"query": {"rank_feature": {"field": f"trend.{entry['feature']}"}}}
        return int(backend.client.count(index=backend.index_name, body=query)["count"])
    if isinstance(backend, ElasticsearchBackend):
        entry = backend.client.get(index=backend.registry_name, id=label_key(VERSION, label))["_source"]
        found = backend.client.count(index=backend.index_name, query={"term": {"trend": entry["feature"]}})
        return int(found["count"])
    pytest.skip(f"{type(backend).__name__} keeps its own storage layout")
