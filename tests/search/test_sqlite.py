"""SQLite FTS5 backend: BM25 with field weights, genre filter, paging, and the trend boost inside SQL."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from freshrank.catalog.models import Movie
from freshrank.search import SearchRequest, open_backend
from freshrank.search.sqlite import MAX_QUERY_TERMS, SqliteBackend, fts_query

V = "model-v1"


@pytest.fixture
def backend(tmp_path: Path, small_movies: list[Movie]) -> SqliteBackend:
    engine = open_backend(f"sqlite:///{tmp_path / 'search.db'}")
    assert isinstance(engine, SqliteBackend)
    assert engine.index(small_movies) == len(small_movies)
    return engine


def _ids(backend: SqliteBackend, **kwargs: object) -> list[int]:
    return [hit.id for hit in backend.search(SearchRequest(**kwargs)).hits]  # type: ignore[arg-type]


def test_text_search_ranks_by_bm25_with_title_weight(backend: SqliteBackend) -> None:
    page = backend.search(SearchRequest(text="christmas"))
    assert {h.id for h in page.hits} == {1, 2, 8}
    assert page.hits[0].text_score == pytest.approx(1.0)  # normalised: the best match scores 1
    assert all(0 < h.text_score <= 1 for h in page.hits)
    # The title field outweighs the overview: "Halloween" in the title beats it in an overview.
    assert _ids(backend, text="dinosaurs")[0] == 3
    assert _ids(backend, text="Spielberg") == [3]  # directors are searched
    assert _ids(backend, text="Culkin") == [1]  # cast is searched


def test_genre_filter_paging_and_ties_by_id(backend: SqliteBackend) -> None:
    assert _ids(backend, genre="family") == [1, 2, 5, 8]  # no text, no trend: all ties, by id
    page = backend.search(SearchRequest(genre="Family", limit=2, offset=1))
    assert [h.id for h in page.hits] == [2, 5] and page.total == 4
    past_end = backend.search(SearchRequest(genre="Family", limit=2, offset=10))
    assert past_end.hits == [] and past_end.total == 4
    assert set(_ids(backend, text="christmas", genre="Comedy")) == {1, 8}
    assert _ids(backend, genre="No Such Genre") == []


def test_trend_boost_is_computed_in_sql(backend: SqliteBackend) -> None:
    backend.put_scores(V, "christmas", {1: 0.9, 2: 0.8, 8: 0.95, 3: 0.1})
    backend.put_scores(V, "snow", {2: 0.5, 5: 0.2})
    page = backend.search(SearchRequest(genre="Family", labels=("christmas", "snow"), model_version=V))
    assert [h.id for h in page.hits] == [2, 8, 1, 5]  # 1.3, 0.95, 0.9, 0.2
    for hit in page.hits:
        assert hit.text_score == 0.0
        assert hit.score == pytest.approx(sum(hit.trend_scores.values()))
    assert page.hits[-1].trend_scores == {"christmas": 0.0, "snow": 0.2}  # unscored pairs count 0
    weighted = backend.search(
        SearchRequest(text="christmas", labels=("christmas",), model_version=V, boost_weight=2.0)
    )
    for hit in weighted.hits:
        assert hit.score == pytest.approx(hit.text_score + 2.0 * hit.trend_scores["christmas"])
    other_version = backend.search(SearchRequest(genre="Family", labels=("christmas",), model_version="v2"))
    assert [h.score for h in other_version.hits] == [0.0] * 4  # scores are per model version


def test_put_scores_is_atomic_and_replaces(backend: SqliteBackend) -> None:
    backend.put_scores(V, "christmas", {1: 0.9, 2: 0.8})
    with pytest.raises(ValueError, match="finite"):
        backend.put_scores(V, "christmas", {1: 0.1, 2: float("nan")})
    page = backend.search(SearchRequest(labels=("christmas",), model_version=V, limit=2))
    assert [(h.id, h.score) for h in page.hits] == [(1, 0.9), (2, 0.8)]  # nothing half-written
    backend.put_scores(V, "christmas", {5: 0.7})
    assert _ids(backend, labels=("christmas",), model_version=V, limit=1) == [5]
    assert backend.scored_labels(V) == {"christmas"}
    assert backend.scored_labels("v2") == set()
    assert backend.model_versions() == [V]


def test_hostile_labels_are_plain_keys(backend: SqliteBackend, tmp_path: Path) -> None:
    hostile = "'; DROP TABLE movies; --"
    huge = "x" * 10_000
    backend.put_scores(V, hostile, {4: 0.9})
    backend.put_scores(V, huge, {6: 0.8})
    page = backend.search(SearchRequest(labels=(hostile, huge), model_version=V, limit=2))
    assert [h.id for h in page.hits] == [4, 6]
    assert page.hits[0].trend_scores[hostile] == 0.9
    assert backend.count() == 8
    with sqlite3.connect(tmp_path / "search.db") as db:  # the schema is intact
        assert db.execute("SELECT COUNT(*) FROM movies").fetchone()[0] == 8


@pytest.mark.parametrize(
    "text",
    [
        '"unbalanced',
        'Christmas"',
        "christ*",
        "NEAR(home alone)",
        "-horror",
        "home AND alone OR NOT",
        "title:Elf",
        "^elf",
        "{title}: elf",
        "(",
        "'; DROP TABLE movies; --",
        "elf\x00",
        "\\",
        "+elf",
    ],
)
def test_user_typed_fts_syntax_is_plain_words(backend: SqliteBackend, text: str) -> None:
    page = backend.search(SearchRequest(text=text))
    assert page.total == len(page.hits)
    assert backend.count() == 8


def test_query_syntax_words_match_as_words(backend: SqliteBackend) -> None:
    assert _ids(backend, text='"Home Alone')[0] == 1  # words OR-ed, both words rank first
    assert _ids(backend, text="title:Elf")[0] == 8
    assert _ids(backend, text="NEAR") == []  # a plain word that no movie has


def test_empty_huge_and_odd_unicode_queries(backend: SqliteBackend, small_movies: list[Movie]) -> None:
    nothing = backend.search(SearchRequest(text="*** -- ()"))
    assert nothing.hits == [] and nothing.warnings
    huge = backend.search(SearchRequest(text=" ".join(f"w{i}" for i in range(5000)) + " christmas" * 100))
    assert any(str(MAX_QUERY_TERMS) in w for w in huge.warnings)
    long_word = backend.search(SearchRequest(text="a" * 100_000))
    assert long_word.hits == []
    backend.index([small_movies[0].model_copy(update={"id": 99, "title": "Pokémon: Mewtwo Strikes Back"})])
    assert _ids(backend, text="pokemon") == [99]  # diacritics folded
    assert _ids(backend, text="ＰＯＫＥＭＯＮ") == [99]  # full-width letters normalised
    assert _ids(backend, text="🎄 \u200b\u202e") == []


def test_reindex_replaces_a_movie(backend: SqliteBackend, small_movies: list[Movie]) -> None:
    backend.index([small_movies[7].model_copy(update={"title": "Buddy", "genres": ("Drama",)})])
    assert backend.count() == 8
    assert _ids(backend, text="Elf") == []
    assert 8 not in _ids(backend, genre="Family")


def test_bad_urls_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown search backend"):
        open_backend("ftp://nowhere")
    memory = open_backend("sqlite:///:memory:")
    assert memory.count() == 0


def test_fts_query_quotes_every_term() -> None:
    query, warnings = fts_query('say "NEAR" now*')
    assert query == '"say" OR "near" OR "now"' and warnings == []


def test_only_non_zero_scores_are_stored(backend: SqliteBackend, tmp_path: Path) -> None:
    backend.put_scores(V, "calm", {1: 0.0, 2: 0.4, 3: 0.0, 4: -0.2})
    backend.put_scores(V, "nothing", {1: 0.0, 2: 0.0})
    with sqlite3.connect(tmp_path / "search.db") as db:
        rows = db.execute("SELECT label, movie_id, score FROM trend_scores ORDER BY 1, 2").fetchall()
    assert rows == [("calm", 2, 0.4), ("calm", 4, -0.2)]
    assert backend.scored_labels(V) == {"calm", "nothing"}
    page = backend.search(SearchRequest(labels=("calm", "nothing"), model_version=V, limit=8))
    assert [h.id for h in page.hits] == [2, 1, 3, 5, 6, 7, 8, 4]  # zeros tie by id, the negative last
    assert page.hits[0].trend_scores == {"calm": 0.4, "nothing": 0.0}


def test_searches_run_in_parallel_and_never_wait_for_the_writer(backend: SqliteBackend) -> None:
    backend.put_scores(V, "christmas", {1: 0.9, 2: 0.8, 8: 0.95})
    requests = [
        SearchRequest(text=text, genre=genre, labels=labels, model_version=V, limit=3)
        for text in ("", "christmas", "boy train")
        for genre in (None, "Family")
        for labels in ((), ("christmas",))
    ]
    serial = [backend.search(request) for request in requests]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(backend.search, requests * 10))
    assert parallel == serial * 10
    # A write in progress holds the write connection's lock; searches from other threads still answer.
    with backend._lock, ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(backend.search, request) for request in requests[:4]]
        assert [f.result(timeout=30) for f in futures] == serial[:4]


def test_a_new_label_version_is_seen_by_the_next_search(backend: SqliteBackend) -> None:
    request = SearchRequest(labels=("space",), model_version=V, limit=1)
    backend.put_scores(V, "space", {3: 0.9})
    assert _ids(backend, labels=("space",), model_version=V, limit=1) == [3]
    backend.put_scores(V, "space", {7: 0.5})  # replaces: the summed boosts a reader kept are stale
    assert [h.id for h in backend.search(request).hits] == [7]


@pytest.fixture(scope="module")
def catalogue_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full catalogue with 20 labels of calibrated scores, in one SQLite file."""
    from freshrank.bench.searchdata import TREND_LABELS, TrendScores
    from freshrank.catalog.loader import load_catalog
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "movies.jsonl.gz"
    if not path.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set FRESHRANK_DATA_DIR")
    movies = load_catalog(path).movies
    db = tmp_path_factory.mktemp("fast-text") / "search.db"
    backend = SqliteBackend(f"sqlite:///{db}")
    backend.index(movies)
    scores = TrendScores(movies)
    for label in TREND_LABELS:
        backend.put_scores(V, label, scores.scores(label))
    backend.close()
    return db


FAST_TEXTS = (
    "love",
    "love story",
    "the dark knight returns",
    "Love loving loved",  # three phrases, one stem: each counts, as in FTS5
    "crème brûlée café",  # diacritics folded
    "foo_bar star_wars",  # one \\w word, two tokens: an FTS5 phrase
    "a 1 2001 x",
    "zzqx",
    "santa " * 3 + "claus",
)


@pytest.mark.parametrize("text_norm", ["max", "none"])
def test_cached_word_scores_rank_exactly_like_fts5_bm25(catalogue_db: Path, text_norm: str) -> None:
    """The in-memory text ranker returns the SQL path's ids, text scores, scores and totals, bit for bit."""
    from freshrank.bench.searchdata import TREND_LABELS

    url = f"sqlite:///{catalogue_db}"
    fast = SqliteBackend(url, text_norm=text_norm, read_only=True)
    plain = SqliteBackend(url, text_norm=text_norm, read_only=True, text_cache=False)
    label_sets = ((), TREND_LABELS[:3], (*TREND_LABELS, "never scored"))
    for text in FAST_TEXTS:
        for genre in (None, "Drama", "family", "No Such Genre"):
            for labels in label_sets:
                for offset, limit in ((0, 10), (35, 20), (1000, 10), (0, 5000)):
                    request = SearchRequest(
                        text=text, genre=genre, labels=labels, model_version=V, limit=limit, offset=offset,
                        boost_weight=0.7,
                    )  # fmt: skip
                    want, got = plain.search(request), fast.search(request)
                    case = f"{text!r} {genre} {len(labels)} labels @{offset}"
                    assert got.total == want.total, case
                    assert [(h.id, h.text_score, h.score) for h in got.hits] == [
                        (h.id, h.text_score, h.score) for h in want.hits
                    ], case
                    assert got.hits == want.hits, case
    fast.close()
    plain.close()


def test_cached_word_scores_follow_a_changed_catalogue(tmp_path: Path, small_movies: list[Movie]) -> None:
    """Re-indexing changes every word's BM25 statistics: the cache is keyed by the catalogue's generation."""
    url = f"sqlite:///{tmp_path / 'search.db'}"
    writer = SqliteBackend(url)
    writer.index(small_movies[:4])
    reader = SqliteBackend(url, read_only=True)
    plain = SqliteBackend(url, read_only=True, text_cache=False)
    request = SearchRequest(text="christmas dinosaurs")
    before = reader.search(request)
    assert before.hits == plain.search(request).hits
    writer.index(small_movies[4:])
    after = reader.search(request)
    assert after.hits == plain.search(request).hits
    assert after.total > before.total
    for engine in (reader, plain, writer):
        engine.close()
