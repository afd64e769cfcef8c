"""Generated catalogues for scale runs: synthetic movies drawn, vectorised, from a real catalogue's figures.

``Vocabulary.from_movies`` counts the real catalogue once (title words and text words with their frequencies,
cast and director names, genres, release years, and the lengths of each field); ``GeneratedCatalog`` then
draws any number of movies from those distributions with numpy, one chunk at a time (chunk ``i`` from its own
seeded generator, so a catalogue is the same for a seed whatever is read of it and in whichever order). Only
strings are built per movie; ``trend_scores`` redraws the word indices without building any text and counts
the trend labels' terms directly, so the lexical signal of a million movies costs seconds, not a BM25 pass
over a million documents. The texts are bags of real words (no grammar): right for index and query costs,
not for relevance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from freshrank.bench.searchdata import TREND_LABELS, TrendScores
from freshrank.catalog.models import Movie
from freshrank.classify.lexical import Bm25Index, s_stem, terms, tokens

CHUNK = 50_000


@dataclass(frozen=True)
class Pool:
    """Values with their relative frequencies (a categorical distribution)."""

    values: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, counts: Counter[object]) -> Pool:
        values = list(counts)
        weights = np.array([counts[v] for v in values], dtype=np.float64)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return cls(array, weights / weights.sum())

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(len(self.values), size=size, p=self.p)


@dataclass(frozen=True)
class Vocabulary:
    """What a real catalogue's movies are made of: words, names, genres, years and field lengths."""

    words: np.ndarray  # tokens as ``terms`` reads them (lowercase), one index space for every text field
    title_p: np.ndarray  # frequency of each word in titles
    text_p: np.ndarray  # frequency of each word in taglines and overviews
    cast: Pool
    directors: Pool
    genres: Pool
    years: Pool
    lengths: dict[str, Pool]  # words per title/tagline/overview, names per cast/directors, genres per movie

    @classmethod
    def from_movies(cls, movies: Iterable[Movie]) -> Vocabulary:
        title: Counter[str] = Counter()
        text: Counter[str] = Counter()
        cast: Counter[object] = Counter()
        directors: Counter[object] = Counter()
        genres: Counter[object] = Counter()
        years: Counter[object] = Counter()
        lengths: dict[str, Counter[object]] = {k: Counter() for k in _FIELDS}
        for movie in movies:
            fields = {"title": tokens(movie.title), "tagline": tokens(movie.tagline)}
            fields["overview"] = tokens(movie.overview)
            title.update(fields["title"])
            text.update(fields["tagline"] + fields["overview"])
            cast.update(movie.cast)
            directors.update(movie.directors)
            genres.update(movie.genres)
            years.update([movie.release_year] if movie.release_year else [])
            for name, values in (*fields.items(), ("cast", movie.cast), ("directors", movie.directors)):
                lengths[name][len(values)] += 1
            lengths["genres"][len(movie.genres)] += 1
        lengths["title"].pop(0, None)  # a movie has a title and an overview
        lengths["overview"].pop(0, None)
        words = sorted(title.keys() | text.keys())
        array = np.empty(len(words), dtype=object)
        array[:] = words
        return cls(
            words=array,
            title_p=_frequencies(words, title),
            text_p=_frequencies(words, text),
            cast=Pool.of(cast),
            directors=Pool.of(directors),
            genres=Pool.of(genres),
            years=Pool.of(years),
            lengths={name: Pool.of(counts) for name, counts in lengths.items()},
        )


_FIELDS = ("title", "tagline", "overview", "cast", "directors", "genres")


def _frequencies(words: list[str], counts: Counter[str]) -> np.ndarray:
    weights = np.array([counts[w] for w in words], dtype=np.float64)
    return weights / weights.sum()


@dataclass(frozen=True)
class _Field:
    """One text or name field of a chunk: flat value indices and each movie's slice of them."""

    values: np.ndarray
    offsets: np.ndarray

    def rows(self, table: np.ndarray) -> Iterator[list[str]]:
        flat = table[self.values].tolist()
        bounds = self.offsets.tolist()
        for start, end in zip(bounds, bounds[1:], strict=False):
            yield flat[start:end]


class GeneratedCatalog:
    """``count`` synthetic movies, ids ``start_id..``, chunk by chunk; the same for a seed and chunk size."""

    def __init__(
        self, vocabulary: Vocabulary, count: int, seed: int = 7, start_id: int = 1, chunk: int = CHUNK
    ) -> None:
        self.vocabulary = vocabulary
        self.count = count
        self.seed = seed
        self.start_id = start_id
        self.chunk = chunk
        self._title_words = np.array([_title_case(w) for w in vocabulary.words], dtype=object)

    @property
    def ids(self) -> range:
        return range(self.start_id, self.start_id + self.count)

    def _spans(self) -> Iterator[tuple[int, int]]:
        for number, start in enumerate(range(0, self.count, self.chunk)):
            yield number, min(self.chunk, self.count - start)

    def _rng(self, number: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, number])

    def _offsets(self, rng: np.random.Generator, field: str, size: int) -> np.ndarray:
        """Where each movie's values of ``field`` start in a flat array (lengths by real frequency)."""
        lengths = self.vocabulary.lengths[field]
        counts = lengths.values[lengths.draw(rng, size)].astype(np.int64)
        return np.concatenate(([0], np.cumsum(counts)))

    def _words(self, rng: np.random.Generator, field: str, p: np.ndarray, size: int) -> _Field:
        offsets = self._offsets(rng, field, size)
        return _Field(rng.choice(len(p), size=int(offsets[-1]), p=p), offsets)

    def _texts(self, rng: np.random.Generator, size: int) -> dict[str, _Field]:
        v = self.vocabulary
        return {
            "title": self._words(rng, "title", v.title_p, size),
            "tagline": self._words(rng, "tagline", v.text_p, size),
            "overview": self._words(rng, "overview", v.text_p, size),
        }

    def _names(self, rng: np.random.Generator, field: str, pool: Pool, size: int) -> _Field:
        offsets = self._offsets(rng, field, size)
        return _Field(pool.draw(rng, int(offsets[-1])), offsets)

    def _genres(self, rng: np.random.Generator, size: int) -> Iterator[list[str]]:
        """Distinct genres per movie, weighted by frequency (Gumbel top-k: no Python loop over draws)."""
        v = self.vocabulary
        counts = v.lengths["genres"].values[v.lengths["genres"].draw(rng, size)].tolist()
        keys = np.log(v.genres.p) + rng.gumbel(size=(size, len(v.genres.p)))
        order = np.argsort(-keys, axis=1)
        names = v.genres.values[order].tolist()
        for row, k in zip(names, counts, strict=True):
            yield row[:k]

    def chunks(self) -> Iterator[list[Movie]]:
        """The catalogue in chunks of ``chunk`` movies (at most one chunk of movies in memory at a time)."""
        for number, size in self._spans():
            rng = self._rng(number)
            texts = self._texts(rng, size)
            genres = self._genres(rng, size)
            cast = self._names(rng, "cast", self.vocabulary.cast, size).rows(self.vocabulary.cast.values)
            directors = self._names(rng, "directors", self.vocabulary.directors, size)
            years = self.vocabulary.years.values[self.vocabulary.years.draw(rng, size)].tolist()
            first = self.start_id + number * self.chunk
            rows = zip(
                texts["title"].rows(self._title_words),
                texts["tagline"].rows(self.vocabulary.words),
                texts["overview"].rows(self.vocabulary.words),
                genres,
                cast,
                directors.rows(self.vocabulary.directors.values),
                years,
                strict=True,
            )
            yield [_movie(first + i, *row) for i, row in enumerate(rows)]

    def trend_scores(self, labels: tuple[str, ...] = TREND_LABELS) -> TrendScores:
        """``TrendScores`` of this catalogue, equal to ``TrendScores(movies)``, without building any text."""
        label_terms = sorted({t for label in labels for t in terms(label)})
        column = {t: i for i, t in enumerate(label_terms)}
        stems = np.array([column.get(s_stem(w), -1) for w in self.vocabulary.words], dtype=np.int64)
        blocks, lengths = [], []
        for number, size in self._spans():
            texts = self._texts(self._rng(number), size)
            doc = np.concatenate([np.repeat(np.arange(size), np.diff(f.offsets)) for f in texts.values()])
            cols = stems[np.concatenate([f.values for f in texts.values()])]
            hit = cols >= 0
            shape = (size, len(label_terms))
            ones = np.ones(int(hit.sum()), dtype=np.float32)
            blocks.append(sparse.csr_matrix((ones, (doc[hit], cols[hit])), shape=shape))
            lengths.append(np.bincount(doc, minlength=size).astype(np.float32))
        tf = sparse.vstack(blocks).tocsc() if blocks else sparse.csc_matrix((0, len(label_terms)))
        index = Bm25Index.from_counts(tf, column, np.concatenate(lengths) if lengths else np.zeros(0))
        return TrendScores.from_index(list(self.ids), index)


def _title_case(word: str) -> str:
    """``word`` capitalised when that reads back as the same token (``ß`` would become ``ss``)."""
    titled = word.title()
    return titled if titled.lower() == word and tokens(titled) == [word] else word


def _movie(
    movie_id: int,
    title: list[str],
    tagline: list[str],
    overview: list[str],
    genres: list[str],
    cast: list[str],
    directors: list[str],
    year: int,
) -> Movie:
    return Movie(
        id=movie_id,
        title=" ".join(title),
        tagline=" ".join(tagline),
        overview=" ".join(overview) + ".",
        genres=tuple(genres),
        cast=tuple(cast),
        directors=tuple(directors),
        release_year=year,
    )
