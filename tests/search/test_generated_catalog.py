"""The generated catalogue of the scale runs: the same movies for a seed, valid rows, and trend scores
equal to those computed from the movies' texts."""

from __future__ import annotations

import numpy as np

from freshrank.bench.generated import GeneratedCatalog, Vocabulary
from freshrank.bench.searchdata import TrendScores
from freshrank.catalog.models import Movie
from freshrank.classify.lexical import tokens

LABELS = ("christmas", "dinosaurs", "north pole", "santa claus", "no such word")


def _movies(catalog: GeneratedCatalog) -> list[Movie]:
    return [movie for chunk in catalog.chunks() for movie in chunk]


def test_a_seed_gives_the_same_catalogue_and_another_seed_another(small_movies: list[Movie]) -> None:
    vocabulary = Vocabulary.from_movies(small_movies)
    first = _movies(GeneratedCatalog(vocabulary, 230, seed=3, chunk=100))
    again = _movies(GeneratedCatalog(vocabulary, 230, seed=3, chunk=100))
    other = _movies(GeneratedCatalog(vocabulary, 230, seed=4, chunk=100))
    assert first == again
    assert [m.model_dump() for m in first] != [m.model_dump() for m in other]


def test_generated_movies_are_valid_catalogue_rows_made_of_the_catalogue(small_movies: list[Movie]) -> None:
    vocabulary = Vocabulary.from_movies(small_movies)
    catalog = GeneratedCatalog(vocabulary, 230, start_id=1000, chunk=100)
    movies = _movies(catalog)
    words = {w for m in small_movies for w in tokens(m.document)}
    names = {n for m in small_movies for n in (*m.cast, *m.directors)}
    assert [m.id for m in movies] == list(range(1000, 1230)) == list(catalog.ids)
    for movie in movies:
        assert Movie.model_validate(movie.model_dump()) == movie
        assert movie.title and movie.overview.strip(".")
        assert set(tokens(movie.document)) <= words
        assert set(movie.cast) | set(movie.directors) <= names
        assert 1 <= len(movie.genres) == len(set(movie.genres)) <= 2
        assert movie.release_year in {m.release_year for m in small_movies}


def test_trend_scores_without_texts_equal_the_scores_of_the_texts(small_movies: list[Movie]) -> None:
    catalog = GeneratedCatalog(Vocabulary.from_movies(small_movies), 430, chunk=100)
    fast = catalog.trend_scores(LABELS)
    reference = TrendScores(_movies(catalog))
    assert fast.ids == reference.ids
    for label in LABELS:
        np.testing.assert_allclose(fast.raw(label), reference.raw(label), rtol=1e-6)
    assert any((fast.calibrated(label) > 0).any() for label in LABELS)
