"""Embedded search on SQLite FTS5: BM25 with field weights plus the trend boost, ranked inside one SQL query.

Score (computed in SQL, see docs/loop.md)::

    text_score = bm25_relevance / max(bm25_relevance over the candidates)   (in [0, 1]; 0 without text)
    score      = text_score + boost_weight * sum(trend score of each requested label)

FTS5's ``bm25()`` is "smaller is better" (negative), so ``bm25_relevance = -bm25(...)``. Dividing by the best
match makes ``boost_weight`` mean the same for every query: 1.0 lets a full trend score (1.0) count as much
as the best text match. ``text_norm = "none"`` keeps the raw BM25 value instead.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from freshrank.catalog.models import Movie
from freshrank.search.base import SearchHit, SearchPage, SearchRequest

# FTS5 column order; bm25() takes one weight per column in this order.
TEXT_FIELDS = ("title", "tagline", "overview", "cast", "directors")
DEFAULT_FIELD_WEIGHTS = {"title": 4.0, "tagline": 2.0, "overview": 1.0, "cast": 1.5, "directors": 1.5}
MAX_QUERY_TERMS = 64  # more words than this in one query are dropped (with a warning)
MAX_TERM_CHARS = 100
MAX_LIMIT = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS movies (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS movie_genres (
    movie_id INTEGER NOT NULL,
    genre TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (genre, movie_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS movie_genres_by_movie ON movie_genres (movie_id);
CREATE VIRTUAL TABLE IF NOT EXISTS movie_fts USING fts5(
    title, tagline, overview, cast, directors,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS trend_scores (
    model_version TEXT NOT NULL,
    label TEXT NOT NULL,
    movie_id INTEGER NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (model_version, label, movie_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scored_labels (
    model_version TEXT NOT NULL,
    label TEXT NOT NULL,
    movies INTEGER NOT NULL,
    scored_at REAL NOT NULL,
    PRIMARY KEY (model_version, label)
) WITHOUT ROWID;
"""


class SearchError(Exception):
    """A search backend could not answer (bad URL, unreadable database)."""


def fts_query(text: str) -> tuple[str, list[str]]:
    """User text as a safe FTS5 query: every word a quoted term, OR-ed (as a search box does); plus warnings.

    Nothing the user types is FTS5 syntax: quotes, ``*``, ``-``, ``NEAR``, ``AND``, column filters all
    become plain words or separators.
    """
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text))
    warnings: list[str] = []
    terms: list[str] = []
    seen: set[str] = set()
    for word in words:
        term = word.lower()[:MAX_TERM_CHARS]
        if term in seen:
            continue
        seen.add(term)
        terms.append('"' + term.replace('"', '""') + '"')
    if len(terms) > MAX_QUERY_TERMS:
        warnings.append(f"query has {len(terms)} distinct words; only the first {MAX_QUERY_TERMS} are used")
        terms = terms[:MAX_QUERY_TERMS]
    return " OR ".join(terms), warnings


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:`` to a sqlite3 path."""
    prefix = "sqlite:///"
    if url in ("sqlite://", "sqlite:///:memory:"):
        return ":memory:"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise SearchError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return url[len(prefix) :]


class SqliteBackend:
    """SearchBackend on one SQLite file; safe to share between threads (one connection behind a lock)."""

    name = "sqlite"

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        text_norm: str = "max",
        read_only: bool = False,
    ) -> None:
        path = sqlite_path(url)
        # read-only needs an existing file (a fresh state directory gets its schema from the first open)
        self.read_only = read_only and path != ":memory:" and Path(path).is_file()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.field_weights = {**DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(TEXT_FIELDS)
        if unknown:
            raise SearchError(f"unknown search fields in field_weights: {sorted(unknown)}")
        if text_norm not in ("max", "none"):
            raise SearchError(f"text_norm must be 'max' or 'none', not {text_norm!r}")
        self.text_norm = text_norm
        self._lock = threading.Lock()
        try:
            if self.read_only:
                uri = f"{Path(path).resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
                return
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SearchError(f"cannot open search database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Writing -----------------------------------------------------------------------------------------

    def index(self, movies: Iterable[Movie]) -> int:
        """Add or replace movies in one transaction; returns how many were written."""
        written = 0
        with self._lock, self._transaction():
            for movie in movies:
                self._write_movie(movie)
                written += 1
        return written

    def _write_movie(self, movie: Movie) -> None:
        db = self._db
        db.execute(
            "INSERT OR REPLACE INTO movies (id, title, doc) VALUES (?, ?, ?)",
            (movie.id, movie.title, movie.model_dump_json()),
        )
        db.execute("DELETE FROM movie_genres WHERE movie_id = ?", (movie.id,))
        db.executemany(
            "INSERT OR IGNORE INTO movie_genres (movie_id, genre) VALUES (?, ?)",
            [(movie.id, genre) for genre in movie.genres],
        )
        db.execute("DELETE FROM movie_fts WHERE rowid = ?", (movie.id,))
        db.execute(
            "INSERT INTO movie_fts (rowid, title, tagline, overview, cast, directors)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (movie.id, movie.title, movie.tagline, movie.overview, *_names(movie.cast, movie.directors)),
        )

    def put_scores(self, model_version: str, label: str, scores: Mapping[int, float]) -> None:
        """Replace one label's scores for one model version: all of them or none (one transaction)."""
        if not model_version or not label:
            raise ValueError("put_scores needs a model version and a label")
        rows = [(model_version, label, int(i), _finite(score, i)) for i, score in scores.items()]
        with self._lock, self._transaction():
            self._db.execute(
                "DELETE FROM trend_scores WHERE model_version = ? AND label = ?", (model_version, label)
            )
            self._db.executemany(
                "INSERT INTO trend_scores (model_version, label, movie_id, score) VALUES (?, ?, ?, ?)", rows
            )
            self._db.execute(
                "INSERT OR REPLACE INTO scored_labels (model_version, label, movies, scored_at)"
                " VALUES (?, ?, ?, ?)",
                (model_version, label, len(rows), time.time()),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # Reading -----------------------------------------------------------------------------------------

    def scored_labels(self, model_version: str) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT label FROM scored_labels WHERE model_version = ?", (model_version,)
            ).fetchall()
        return {row[0] for row in rows}

    def model_versions(self) -> list[str]:
        """Model versions with stored scores, most recently written first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT model_version FROM scored_labels GROUP BY model_version ORDER BY MAX(scored_at) DESC"
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM movies").fetchone()[0])

    def movies(self) -> Iterator[Movie]:
        """Every indexed movie in id order (what a classifier fits on)."""
        with self._lock:
            rows = self._db.execute("SELECT doc FROM movies ORDER BY id").fetchall()
        for (doc,) in rows:
            yield Movie.model_validate_json(doc)

    def genres(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT genre FROM movie_genres ORDER BY genre").fetchall()
        return [row[0] for row in rows]

    def search(self, request: SearchRequest) -> SearchPage:
        """Ranked by text_score + boost_weight * sum(trend scores), ties by id, all inside one SQL query."""
        limit = max(0, min(int(request.limit), MAX_LIMIT))
        offset = max(0, int(request.offset))
        labels = tuple(dict.fromkeys(label for label in request.labels if label))
        match, warnings = fts_query(request.text)
        if request.text.strip() and not match:
            warnings.append("the query has no searchable words; nothing matched")
            return SearchPage(hits=[], total=0, warnings=warnings)
        sql, params = self._ranking_sql(
            match, request.genre, labels, request.model_version, request.boost_weight
        )
        params += [limit, offset]
        with self._lock:
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise SearchError(f"search failed: {exc}") from exc
            total = rows[0][-1] if rows else self._total(match, request.genre)
        hits = [self._hit(row, labels) for row in rows]
        return SearchPage(hits=hits, total=int(total), warnings=warnings)

    def _total(self, match: str, genre: str | None) -> int:
        """Candidate count when the requested page is past the end (the window count came back empty)."""
        sql, params = self._candidates_sql(match, genre)
        return int(self._db.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0])

    def _candidates_sql(self, match: str, genre: str | None) -> tuple[str, list[Any]]:
        """(id, raw text relevance) of every movie that may be returned."""
        params: list[Any] = []
        if match:
            weights = ", ".join(str(float(self.field_weights[f])) for f in TEXT_FIELDS)
            sql = (
                f"SELECT rowid AS id, -bm25(movie_fts, {weights}) AS raw"
                " FROM movie_fts WHERE movie_fts MATCH ?"
            )
            params.append(match)
        else:
            sql = "SELECT id, 0.0 AS raw FROM movies"
        if genre:
            column = "rowid" if match else "id"
            where = "AND" if match else "WHERE"
            sql += f" {where} {column} IN (SELECT movie_id FROM movie_genres WHERE genre = ?)"
            params.append(genre)
        return sql, params

    def _ranking_sql(
        self, match: str, genre: str | None, labels: Sequence[str], model_version: str, weight: float
    ) -> tuple[str, list[Any]]:
        candidates, params = self._candidates_sql(match, genre)
        text = "c.raw / NULLIF(MAX(c.raw) OVER (), 0)" if self.text_norm == "max" and match else "c.raw"
        boost_params: list[Any] = [model_version, *labels]
        placeholders = ", ".join("?" for _ in labels) or "NULL"
        sql = f"""
            WITH candidates AS ({candidates}),
            boost AS (
                SELECT movie_id, SUM(score) AS total, json_group_object(label, score) AS per_label
                FROM trend_scores
                WHERE model_version = ? AND label IN ({placeholders})
                GROUP BY movie_id
            ),
            scored AS (
                SELECT c.id AS id, COALESCE({text}, 0.0) AS text_score,
                       COALESCE(b.total, 0.0) AS boost, b.per_label AS per_label
                FROM candidates c LEFT JOIN boost b ON b.movie_id = c.id
            )
            SELECT s.id, m.title, m.doc, s.text_score, s.per_label,
                   s.text_score + ? * s.boost AS score, COUNT(*) OVER () AS total
            FROM scored s JOIN movies m ON m.id = s.id
            ORDER BY score DESC, s.id ASC
            LIMIT ? OFFSET ?
        """
        return sql, params + boost_params + [float(weight)]

    @staticmethod
    def _hit(row: tuple[Any, ...], labels: Sequence[str]) -> SearchHit:
        movie_id, title, doc, text_score, per_label, score, _total = row
        stored: dict[str, float] = json.loads(per_label) if per_label else {}
        movie = Movie.model_validate_json(doc)
        return SearchHit(
            id=int(movie_id),
            title=title,
            text_score=float(text_score),
            trend_scores={label: float(stored.get(label, 0.0)) for label in labels},
            score=float(score),
            release_year=movie.release_year,
            genres=movie.genres,
            overview=movie.overview,
        )


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (the connection runs in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _names(*groups: Sequence[str]) -> list[str]:
    return [", ".join(group) for group in groups]


def _finite(score: float, movie_id: int) -> float:
    value = float(score)
    if not math.isfinite(value):
        raise ValueError(f"score for movie {movie_id} is not a finite number: {score!r}")
    return value
