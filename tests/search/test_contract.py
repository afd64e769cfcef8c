"""One contract for every search backend: SQLite FTS5 (embedded), a real OpenSearch on 127.0.0.1:9200 and a
real Elasticsearch on 127.0.0.1:9201 (scripts/elasticsearch.sh).

The engine runs use a unique index per test (deleted after); a missing server FAILS these tests.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshrank.catalog.models import Movie
from freshrank.search import open_backend
from freshrank.search.base import SearchBackend, SearchRequest
from freshrank.search.elasticsearch import ElasticsearchBackend, ElasticsearchError
from freshrank.search.opensearch import OpenSearchBackend, OpenSearchError
from freshrank.search.sqlite import SqliteBackend
from tests.conftest import SMALL_MOVIES

OPENSEARCH = os.environ.get("FRESHRANK_TEST_OPENSEARCH", "127.0.0.1:9200")
# scripts/elasticsearch.sh's local-only credentials (security on, no TLS, loopback).
ELASTICSEARCH = os.environ.get("FRESHRANK_TEST_ELASTICSEARCH", "elastic:freshrank-local@127.0.0.1:9201")
VERSION = "model-v1"
# Rank features keep a 9-bit mantissa inside the engine: scores agree to 0.4 % (see docs/scale-out.md).
REL = 5e-3


BACKENDS = [
    "sqlite",
    pytest.param("opensearch", marks=pytest.mark.opensearch),
    pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
]
ENGINE_ERRORS = {"opensearch": OpenSearchError, "elasticsearch": ElasticsearchError}


def open_test_backend(kind: str, directory: Path) -> SearchBackend:
    if kind == "sqlite":
        return SqliteBackend(f"sqlite:///{directory / 'search.db'}")
    if kind == "elasticsearch":
        return open_elasticsearch()
    engine = OpenSearchBackend(f"opensearch://{OPENSEARCH}/freshrank-test-{uuid.uuid4().hex[:12]}")
    try:
        engine.client.info()
    except Exception as exc:
        pytest.fail(f"no OpenSearch at {OPENSEARCH} (bash scripts/services.sh up opensearch): {exc}")
    return engine


def open_elasticsearch() -> ElasticsearchBackend:
    engine = ElasticsearchBackend(f"elasticsearch://{ELASTICSEARCH}/freshrank-test-{uuid.uuid4().hex[:12]}")
    try:
        engine.client.cluster.health()  # not info(): `GET /` lives in the rest-root module the zip lacks
    except Exception as exc:
        pytest.fail(f"no Elasticsearch at {ELASTICSEARCH} (bash scripts/services.sh up elasticsearch): {exc}")
    return engine


def close_test_backend(backend: SearchBackend) -> None:
    if isinstance(backend, OpenSearchBackend | ElasticsearchBackend):
        backend.drop()
    backend.close()  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    engine = open_test_backend(request.param, tmp_path)
    yield engine
    close_test_backend(engine)


@pytest.fixture(scope="module", params=BACKENDS)
def read_only(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchBackend]:
    """One indexed catalogue per module for tests that only search (index creation costs ~1.5 s)."""
    engine = open_test_backend(request.param, tmp_path_factory.mktemp("read-only"))
    engine.index(Movie.model_validate(row) for row in SMALL_MOVIES)
    yield engine
    close_test_backend(engine)


@pytest.fixture
def indexed(backend: SearchBackend, small_movies: list[Movie]) -> SearchBackend:
    assert backend.index(small_movies) == len(small_movies)
    return backend


def ids(backend: SearchBackend, **kwargs: object) -> list[int]:
    return [hit.id for hit in backend.search(SearchRequest(**kwargs)).hits]  # type: ignore[arg-type]


def test_index_and_count_replace_rather_than_duplicate(
    backend: SearchBackend, small_movies: list[Movie]
) -> None:
    assert backend.count() == 0
    assert backend.index(small_movies) == 8
    assert backend.index(small_movies[:3]) == 3
    assert backend.count() == 8
    renamed = small_movies[0].model_copy(update={"title": "Home Alone Again"})
    backend.index([renamed])
    assert backend.search(SearchRequest(text="again")).hits[0].title == "Home Alone Again"


def test_text_search_finds_words_in_any_field_and_stems(read_only: SearchBackend) -> None:
    assert ids(read_only, text="dinosaur")[0] == 3  # "dinosaurs" in the overview
    assert ids(read_only, text="Spielberg") == [3]  # directors
    assert ids(read_only, text="Culkin") == [1]  # cast
    page = read_only.search(SearchRequest(text="christmas"))
    assert {hit.id for hit in page.hits} == {1, 2, 8}
    assert page.total == 3
    assert max(hit.text_score for hit in page.hits) == pytest.approx(1.0)  # normalised by the best match
    assert all(0 < hit.text_score <= 1.0 + 1e-6 for hit in page.hits)


def test_title_weighs_more_than_overview(read_only: SearchBackend) -> None:
    # "Halloween" is the title of 6 and appears only in its overview otherwise.
    assert ids(read_only, text="halloween")[0] == 6


def test_genre_filter_is_exact_and_case_insensitive(read_only: SearchBackend) -> None:
    assert ids(read_only, genre="Horror") == [4, 6]
    assert ids(read_only, genre="horror") == [4, 6]
    assert ids(read_only, text="christmas", genre="Animation") == [2]
    assert ids(read_only, genre="Western") == []
    assert read_only.search(SearchRequest(genre="Family")).total == 4


def test_paging_covers_every_result_once(read_only: SearchBackend) -> None:
    pages = [ids(read_only, limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [len(page) for page in pages] == [3, 3, 2]
    assert sum(pages, []) == ids(read_only, limit=100)
    past_end = read_only.search(SearchRequest(limit=5, offset=50))
    assert past_end.hits == [] and past_end.total == 8


def test_ties_are_broken_by_id(indexed: SearchBackend) -> None:
    assert ids(indexed, limit=100) == [1, 2, 3, 4, 5, 6, 7, 8]  # no text, no boost: all score 0
    indexed.put_scores(VERSION, "winter", {5: 0.5, 2: 0.5, 7: 0.5})
    ranked = ids(indexed, labels=("winter",), model_version=VERSION, limit=100)
    assert ranked == [2, 5, 7, 1, 3, 4, 6, 8]


def test_empty_text_ranks_by_trend_score(indexed: SearchBackend) -> None:
    indexed.put_scores(VERSION, "deep sea", {3: 0.2, 5: 0.9, 7: 0.5})
    page = indexed.search(SearchRequest(labels=("deep sea",), model_version=VERSION, limit=3))
    assert [hit.id for hit in page.hits] == [5, 7, 3]
    top = page.hits[0]
    assert top.text_score == 0.0
    assert top.trend_scores == {"deep sea": pytest.approx(0.9)}
    assert top.score == pytest.approx(0.9, rel=REL)


def test_boost_raises_trend_scored_movies(indexed: SearchBackend) -> None:
    plain = ids(indexed, text="boy")
    assert set(plain) == {1, 2}
    low = plain[-1]
    indexed.put_scores(VERSION, "holiday", {low: 1.0, 4: 0.3})
    request = SearchRequest(text="boy", labels=("holiday",), model_version=VERSION, boost_weight=2.0)
    boosted = indexed.search(request)
    assert [hit.id for hit in boosted.hits] == [low, plain[0]]  # the boost never adds non-matching movies
    for hit in boosted.hits:
        expected = hit.text_score + 2.0 * sum(hit.trend_scores.values())
        assert hit.score == pytest.approx(expected, rel=REL)
    assert ids(indexed, text="boy", labels=("holiday",), model_version=VERSION, boost_weight=0.0) == plain
    assert ids(indexed, text="boy", labels=("holiday",), model_version="other-model") == plain


def test_several_labels_add_up(indexed: SearchBackend) -> None:
    indexed.put_scores(VERSION, "a", {1: 0.4, 2: 0.5})
    indexed.put_scores(VERSION, "b", {1: 0.4, 3: 0.7})
    page = indexed.search(SearchRequest(labels=("a", "b", "never scored"), model_version=VERSION, limit=3))
    assert [hit.id for hit in page.hits] == [1, 3, 2]
    assert page.hits[0].trend_scores == {"a": pytest.approx(0.4), "b": pytest.approx(0.4), "never scored": 0}
    assert page.hits[0].score == pytest.approx(0.8, rel=REL)


def test_a_repeated_or_blank_label_boosts_once(indexed: SearchBackend) -> None:
    indexed.put_scores(VERSION, "a", {1: 0.4, 2: 0.5})
    request = SearchRequest(labels=("a", "", "a"), model_version=VERSION, limit=2)
    assert request.labels == ("a",)  # de-duplicated once, in the request, for every backend
    page = indexed.search(request)
    assert [hit.id for hit in page.hits] == [2, 1]
    assert page.hits[0].score == pytest.approx(0.5, rel=REL)
    assert page.hits[0].trend_scores == {"a": pytest.approx(0.5)}


def test_put_scores_replaces_a_label_whole(indexed: SearchBackend) -> None:
    indexed.put_scores(VERSION, "space", {1: 0.9, 2: 0.1})
    indexed.put_scores(VERSION, "space", {2: 0.8})
    page = indexed.search(SearchRequest(labels=("space",), model_version=VERSION, limit=2))
    assert [hit.id for hit in page.hits] == [2, 1]
    assert page.hits[1].trend_scores == {"space": 0.0}  # the first write's 0.9 is gone


def test_put_scores_is_all_or_nothing_on_bad_input(indexed: SearchBackend) -> None:
    indexed.put_scores(VERSION, "sharks", {5: 0.6})
    with pytest.raises(ValueError):
        indexed.put_scores(VERSION, "sharks", {1: 0.9, 2: math.nan})
    with pytest.raises(ValueError):
        indexed.put_scores(VERSION, "", {1: 0.9})
    page = indexed.search(SearchRequest(labels=("sharks",), model_version=VERSION, limit=2))
    assert [(hit.id, hit.trend_scores["sharks"]) for hit in page.hits] == [(5, pytest.approx(0.6)), (1, 0.0)]


def test_scored_labels_are_per_model_version(indexed: SearchBackend) -> None:
    assert indexed.scored_labels(VERSION) == set()
    hostile = "#'; DROP TABLE movies; -- " + "x" * 10_000
    indexed.put_scores(VERSION, "zombies", {4: 0.9})
    indexed.put_scores(VERSION, hostile, {6: 0.4})
    indexed.put_scores("model-v2", "zombies", {4: 0.1})
    assert indexed.scored_labels(VERSION) == {"zombies", hostile}
    assert indexed.scored_labels("model-v2") == {"zombies"}
    assert indexed.search(SearchRequest(labels=(hostile,), model_version=VERSION)).hits[0].id == 6
    assert indexed.count() == 8


@pytest.mark.parametrize(
    "text",
    [
        "title:(christmas OR",
        '"unbalanced',
        "chris*",
        "NEAR(boy train)",
        "-christmas",
        "AND OR NOT",
        "'; DROP TABLE movies; --",
        "\\",
        '{"query": {"match_all": {}}}',
        "a^10 b~2 [1 TO 5]",
        "/regex.*/",
    ],
)
def test_user_query_syntax_is_plain_words(read_only: SearchBackend, text: str) -> None:
    page = read_only.search(SearchRequest(text=text))
    assert page.total <= 8
    assert read_only.count() == 8
    if "christmas" in text:
        assert {hit.id for hit in page.hits} == {1, 2, 8}


def test_query_without_words_matches_nothing(read_only: SearchBackend) -> None:
    page = read_only.search(SearchRequest(text="?!* -- ()"))
    assert page.hits == [] and page.total == 0 and page.warnings


def test_huge_text_is_cut_with_a_warning(read_only: SearchBackend) -> None:
    giant_word = read_only.search(SearchRequest(text="x" * 10_000))
    assert giant_word.hits == []
    many_words = " ".join(f"w{i}" for i in range(5_000)) + " christmas"
    page = read_only.search(SearchRequest(text=many_words))
    assert any("only the first" in warning for warning in page.warnings)
    assert read_only.search(SearchRequest(text="christmas " + "filler " * 20_000)).total == 3


ENGINES = [
    pytest.param("opensearch", marks=pytest.mark.opensearch),
    pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
]


@pytest.mark.parametrize("backend", ENGINES, indirect=True)
def test_engine_publishes_a_label_only_after_all_its_scores_are_written(
    backend: SearchBackend, small_movies: list[Movie]
) -> None:
    assert isinstance(backend, OpenSearchBackend | ElasticsearchBackend)
    error = ENGINE_ERRORS[backend.name]
    backend.index(small_movies)
    backend.put_scores(VERSION, "storm", {3: 0.7})
    # A real server-side fault: the movie index refuses writes while the registry still accepts them.
    backend.client.indices.put_settings(index=backend.index_name, body={"index.blocks.write": True})
    try:
        with pytest.raises(error):
            backend.put_scores(VERSION, "storm", {1: 0.9, 2: 0.8})
        with pytest.raises(error):
            backend.put_scores(VERSION, "calm", {1: 0.9})
    finally:
        backend.client.indices.put_settings(index=backend.index_name, body={"index.blocks.write": False})
    assert backend.scored_labels(VERSION) == {"storm"}
    page = backend.search(SearchRequest(labels=("storm", "calm"), model_version=VERSION, limit=2))
    assert [(hit.id, hit.trend_scores) for hit in page.hits] == [
        (3, {"storm": pytest.approx(0.7), "calm": 0.0}),
        (1, {"storm": 0.0, "calm": 0.0}),
    ]


@pytest.mark.parametrize("backend", ENGINES, indirect=True)
def test_engine_stores_only_scores_above_zero(backend: SearchBackend, small_movies: list[Movie]) -> None:
    assert isinstance(backend, OpenSearchBackend | ElasticsearchBackend)
    backend.index(small_movies)
    backend.put_scores(VERSION, "sparse", {1: 0.0, 2: 0.5, 3: -0.2})
    backend.put_scores(VERSION, "all zero", {1: 0.0, 2: 0.0})

    def trend(movie_id: int) -> dict[str, float]:
        source = backend.client.get(index=backend.index_name, id=str(movie_id))["_source"]
        return dict(source.get("trend") or {})

    assert trend(1) == {} and trend(3) == {}  # zeros and negatives are not written
    assert list(trend(2).values()) == [0.5]
    assert backend.scored_labels(VERSION) == {"sparse", "all zero"}
    page = backend.search(SearchRequest(labels=("sparse", "all zero"), model_version=VERSION, limit=3))
    assert [(hit.id, hit.trend_scores) for hit in page.hits] == [
        (2, {"sparse": 0.5, "all zero": 0.0}),
        (1, {"sparse": 0.0, "all zero": 0.0}),
        (3, {"sparse": 0.0, "all zero": 0.0}),
    ]


def test_opensearch_url_is_validated() -> None:
    with pytest.raises(OpenSearchError):
        OpenSearchBackend("http://127.0.0.1:9200")
    with pytest.raises(OpenSearchError):
        OpenSearchBackend("opensearch://127.0.0.1:9200/Bad*Index")


def test_elasticsearch_url_is_validated() -> None:
    with pytest.raises(ElasticsearchError):
        ElasticsearchBackend("opensearch://127.0.0.1:9201")
    with pytest.raises(ElasticsearchError):
        ElasticsearchBackend("elasticsearch://127.0.0.1:9201/Bad*Index")
    engine = ElasticsearchBackend("elasticsearch://elastic:s%40cret@127.0.0.1/movies")
    assert engine.index_name == "movies" and "s@cret" not in engine.url
    engine.close()


@pytest.mark.elasticsearch
def test_elasticsearch_wrong_password_is_a_clear_error() -> None:
    host = ELASTICSEARCH.rsplit("@", 1)[-1]
    engine = ElasticsearchBackend(f"elasticsearch://elastic:wrong-password@{host}/freshrank-test-auth")
    with pytest.raises(ElasticsearchError, match="refused the credentials"):
        engine.count()
    engine.close()


def test_elasticsearch_down_is_a_clear_error() -> None:
    engine = ElasticsearchBackend("elasticsearch://elastic:x@127.0.0.1:9/freshrank-test-down", timeout=2)
    with pytest.raises(ElasticsearchError, match="unavailable"):
        engine.search(SearchRequest(text="christmas"))
    engine.close()


@pytest.mark.parametrize(
    "url", ["elasticsearch://elastic:x@127.0.0.1:9/down", "opensearch://127.0.0.1:9/down"]
)
def test_a_server_that_is_down_is_named_as_such(url: str) -> None:
    engine = open_backend(url)
    with pytest.raises((ElasticsearchError, OpenSearchError), match="server not reachable \\(is it running"):
        engine.search(SearchRequest(text="christmas"))
    engine.close()  # type: ignore[attr-defined]
