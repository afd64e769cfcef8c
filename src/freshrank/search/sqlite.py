"""Embedded search on SQLite FTS5: BM25 with field weights plus the trend boost, ranked inside one SQL query.

Score (computed in SQL, see docs/loop.md)::

    text_score = bm25_relevance / max(bm25_relevance over the candidates)   (in [0, 1]; 0 without text)
    score      = text_score + boost_weight * sum(trend score of each requested label)

FTS5's ``bm25()`` is "smaller is better" (negative), so ``bm25_relevance = -bm25(...)``. Dividing by the best
match makes ``boost_weight`` mean the same for every query: 1.0 lets a full trend score (1.0) count as much
as the best text match. ``text_norm = "none"`` keeps the raw BM25 value instead.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from freshrank.catalog.models import Movie
from freshrank.search.base import ScoreEntry, SearchHit, SearchPage, SearchRequest
from freshrank.search.sqlite_text import Boost, TextRanker

# FTS5 column order; bm25() takes one weight per column in this order.
TEXT_FIELDS = ("title", "tagline", "overview", "cast", "directors")
DEFAULT_FIELD_WEIGHTS = {"title": 4.0, "tagline": 2.0, "overview": 1.0, "cast": 1.5, "directors": 1.5}
MAX_QUERY_TERMS = 64  # more words than this in one query are dropped (with a warning)
MAX_TERM_CHARS = 100
MAX_LIMIT = 10_000
SCHEMA_VERSION = 1  # 1: trend_scores holds non-zero scores only
MMAP_BYTES = 256 * 1024 * 1024  # readers map the file: page reads become memory reads

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
-- Ids only, a few pages: counting and listing movies by id never reads the (large) documents.
CREATE INDEX IF NOT EXISTS movies_by_id ON movies (id);
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
-- key 'catalog': a random token rewritten by every index(); readers' text caches are keyed by it.
CREATE TABLE IF NOT EXISTS search_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scored_labels (
    model_version TEXT NOT NULL,
    label TEXT NOT NULL,
    movies INTEGER NOT NULL,
    scored_at REAL NOT NULL,
    PRIMARY KEY (model_version, label)
) WITHOUT ROWID;
"""


# Per read connection: the summed boosts of the label sets it ranked lately (see SqliteBackend._boost_set).
_TEMP_BOOST = """
CREATE TEMP TABLE IF NOT EXISTS boost (
    boost_set INTEGER NOT NULL, id INTEGER NOT NULL, boost REAL NOT NULL, PRIMARY KEY (boost_set, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS temp.boost_best ON boost (boost_set, boost DESC, id);
"""
BOOST_SETS_PER_CONNECTION = 8
MAX_CACHED_DOCS = 50_000  # parsed page documents kept per catalogue generation


class SearchError(Exception):
    """A search backend could not answer (bad URL, unreadable database)."""


def fts_query(text: str) -> tuple[str, list[str]]:
    """User text as a safe FTS5 query: every word a quoted term, OR-ed (as a search box does); plus warnings.

    Nothing the user types is FTS5 syntax: quotes, ``*``, ``-``, ``NEAR``, ``AND``, column filters all
    become plain words or separators.
    """
    terms, warnings = fts_phrases(text)
    return " OR ".join(terms), warnings


def fts_phrases(text: str) -> tuple[list[str], list[str]]:
    """The quoted FTS5 phrases that ``fts_query`` OR-s together, in order; plus warnings."""
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
    return terms, warnings


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:`` to a sqlite3 path."""
    prefix = "sqlite:///"
    if url in ("sqlite://", "sqlite:///:memory:"):
        return ":memory:"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise SearchError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return url[len(prefix) :]


class SqliteBackend:
    """SearchBackend on one SQLite file, safe to share between threads.

    Writes go through one connection behind a lock; every thread that searches gets its own read-only
    connection (WAL mode: readers never wait for each other, nor for the writer).
    """

    name = "sqlite"

    def __init__(
        self,
        url: str,
        field_weights: Mapping[str, float] | None = None,
        text_norm: str = "max",
        read_only: bool = False,
        text_cache: bool = True,
    ) -> None:
        path = sqlite_path(url)
        # read-only needs an existing file (a fresh state directory gets its schema from the first open)
        self.read_only = read_only and path != ":memory:" and Path(path).is_file()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.path = path
        self.field_weights = {**DEFAULT_FIELD_WEIGHTS, **(field_weights or {})}
        unknown = set(self.field_weights) - set(TEXT_FIELDS)
        if unknown:
            raise SearchError(f"unknown search fields in field_weights: {sorted(unknown)}")
        if text_norm not in ("max", "none"):
            raise SearchError(f"text_norm must be 'max' or 'none', not {text_norm!r}")
        self.text_norm = text_norm
        self._bm25_weights = ", ".join(str(float(self.field_weights[f])) for f in TEXT_FIELDS)
        # text queries from cached per-word BM25 terms (same scores as the SQL path, see sqlite_text)
        self._text = TextRanker(self._bm25_weights, text_norm == "max") if text_cache else None
        self._docs: dict[int, _Doc] = {}  # parsed documents of self._docs_generation (page reads)
        self._docs_generation: str | None = None
        self._lock = threading.Lock()  # the write connection (and, for :memory:, every read)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # per connection: (model version, labels, their scored_at) -> boost_set id in its temp.boost
        self._boost_sets: dict[int, dict[tuple[Any, ...], int]] = {}
        try:
            if self.read_only:
                uri = f"{Path(path).resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
                return
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._boost_sets[id(self._db)] = {}
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.executescript(_TEMP_BOOST)  # :memory: ranks on this connection
            self._migrate()
        except sqlite3.Error as exc:
            raise SearchError(f"cannot open search database {path}: {exc}") from exc

    def _migrate(self) -> None:
        """Databases written before scores were sparse: drop their zero rows once (they rank nothing)."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with self._transaction():
                self._db.execute("DELETE FROM trend_scores WHERE score = 0")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if self._db.execute("SELECT 1 FROM search_meta WHERE key = 'catalog'").fetchone() is None:
            with self._transaction():
                self._new_generation()

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
        with self._lock:
            self._db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection, inside one read transaction (one consistent snapshot)."""
        if self.path == ":memory:":  # one private database: every thread shares the write connection
            with self._lock:
                yield self._db
            return
        db = self._reader()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{quote(str(Path(self.path).resolve()))}?mode=ro"
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=30)
                db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")  # shared by all readers (the OS page cache)
                db.execute("PRAGMA temp_store = MEMORY")  # the sorter and GROUP BY b-trees
            except sqlite3.Error as exc:
                raise SearchError(f"cannot open search database {self.path}: {exc}") from exc
            db.executescript(_TEMP_BOOST)
            self._boost_sets[id(db)] = {}
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    # Writing -----------------------------------------------------------------------------------------

    def index(self, movies: Iterable[Movie]) -> int:
        """Add or replace movies in one transaction; returns how many were written."""
        written = 0
        with self._lock, self._transaction():
            for movie in movies:
                self._write_movie(movie)
                written += 1
            if written:
                self._new_generation()
        return written

    def _new_generation(self) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO search_meta (key, value) VALUES ('catalog', ?)", (uuid.uuid4().hex,)
        )

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
        """Replace one label's scores for one model version: all of them or none (one transaction).

        Only non-zero scores are stored (a zero adds nothing to any ranking); ``scored_labels`` keeps the
        label even when every score is zero.
        """
        if not model_version or not label:
            raise ValueError("put_scores needs a model version and a label")
        values = [(int(i), _finite(score, i)) for i, score in scores.items()]
        rows = [(model_version, label, i, score) for i, score in values if score != 0.0]
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
                (model_version, label, len(values), time.time()),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def delete_scores(self, model_version: str, label: str, batch: int = 2_000) -> int:
        """Delete one label's scores, ``batch`` rows per transaction (readers never wait: WAL), entry last."""
        freed = 0
        key = (model_version, label)
        while True:
            with self._lock, self._transaction():
                deleted = self._db.execute(
                    "DELETE FROM trend_scores WHERE model_version = ? AND label = ? AND movie_id IN"
                    " (SELECT movie_id FROM trend_scores WHERE model_version = ? AND label = ? LIMIT ?)",
                    (*key, *key, max(1, int(batch))),
                ).rowcount
                if deleted == 0:
                    self._db.execute("DELETE FROM scored_labels WHERE model_version = ? AND label = ?", key)
            freed += deleted
            if deleted == 0:
                return freed

    def stored_bytes(self) -> int:
        """Bytes in use in the database file (its free pages, reused by later writes, left out)."""
        with self._reading() as db:
            pages = (
                db.execute("PRAGMA page_count").fetchone()[0]
                - db.execute("PRAGMA freelist_count").fetchone()[0]
            )
            return int(pages * db.execute("PRAGMA page_size").fetchone()[0])

    # Reading -----------------------------------------------------------------------------------------

    def scored_labels(self, model_version: str) -> set[str]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT label FROM scored_labels WHERE model_version = ?", (model_version,)
            ).fetchall()
        return {row[0] for row in rows}

    def score_entries(self) -> list[ScoreEntry]:
        with self._reading() as db:
            rows = db.execute("SELECT model_version, label, scored_at FROM scored_labels").fetchall()
        return [ScoreEntry(str(v), str(label), float(at)) for v, label, at in rows]

    def model_versions(self) -> list[str]:
        """Model versions with stored scores, most recently written first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT model_version FROM scored_labels GROUP BY model_version ORDER BY MAX(scored_at) DESC"
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        with self._reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM movies").fetchone()[0])

    def movies(self) -> Iterator[Movie]:
        """Every indexed movie in id order (what a classifier fits on)."""
        with self._reading() as db:
            rows = db.execute("SELECT doc FROM movies ORDER BY id").fetchall()
        for (doc,) in rows:
            yield Movie.model_validate_json(doc)

    def genres(self) -> list[str]:
        with self._reading() as db:
            rows = db.execute("SELECT DISTINCT genre FROM movie_genres ORDER BY genre").fetchall()
        return [row[0] for row in rows]

    def search(self, request: SearchRequest) -> SearchPage:
        """Ranked by text_score + boost_weight * sum(trend scores), ties by id, inside SQL.

        The ranking query reads only the candidates' ids, their text relevance and the requested labels'
        non-zero scores; documents and per-label scores are read for the returned page only.
        """
        limit = max(0, min(int(request.limit), MAX_LIMIT))
        offset = max(0, int(request.offset))
        labels = request.labels
        match, warnings = fts_query(request.text)
        if request.text.strip() and not match:
            warnings.append("the query has no searchable words; nothing matched")
            return SearchPage(hits=[], total=0, warnings=warnings)
        genre, weights = request.genre or None, request.weights()
        query = _Query(match, genre, labels, request.model_version, request.boost_weight, weights)
        phrases = fts_phrases(request.text)[0]
        try:
            with self._reading() as db:
                generation = self._generation(db) if self._text is not None else None
                ranked, total = self._rank(db, query, phrases, generation, limit, offset)
                hits = self._hits(db, query, ranked, generation)
        except sqlite3.OperationalError as exc:
            raise SearchError(f"search failed: {exc}") from exc
        return SearchPage(hits=hits, total=total, warnings=warnings)

    def _rank(
        self,
        db: sqlite3.Connection,
        query: _Query,
        phrases: list[str],
        generation: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[tuple[int, float, float]], int]:
        """(id, text_score, score) of the page, and the number of candidates."""
        in_memory = bool(query.match) or query.boosted  # a plain browse by id stays in SQL
        if generation is not None and self._text is not None and in_memory:
            boost = self._boost(db, query) if query.boosted else None
            r = self._text.rank(db, generation, phrases, query.genre, boost, (limit, offset))
            page = zip(r.ids.tolist(), r.text.tolist(), r.score.tolist(), strict=True)
            return list(page), r.total
        boost_set = self._boost_set(db, query) if query.boosted else None
        if query.match:
            sql, params = self._text_ranking_sql(query, boost_set)
            rows = db.execute(sql, [*params, limit, offset]).fetchall()
            total = rows[0][3] if rows else self._total(db, query)
            return [(r[0], r[1], r[2]) for r in rows], int(total)
        sql, params = self._browse_ranking_sql(query, boost_set, limit + offset)
        rows = db.execute(sql, [*params, limit, offset]).fetchall()
        return [(r[0], 0.0, r[1]) for r in rows], self._total(db, query)

    def _generation(self, db: sqlite3.Connection) -> str | None:
        """The catalogue's current token (None in a database written before there was one)."""
        try:
            row = db.execute("SELECT value FROM search_meta WHERE key = 'catalog'").fetchone()
        except sqlite3.OperationalError:  # no such table: an older database opened read-only
            return None
        return None if row is None else str(row[0])

    def _boost_key(self, db: sqlite3.Connection, query: _Query) -> tuple[object, ...]:
        """What the summed boosts depend on: model version, labels and when each label was scored."""
        placeholders = ", ".join("?" for _ in query.labels)
        stamps = db.execute(
            "SELECT label, scored_at FROM scored_labels"
            f" WHERE model_version = ? AND label IN ({placeholders}) ORDER BY label",
            [query.model_version, *query.labels],
        ).fetchall()
        weights = tuple(query.label_weights.get(label, 1.0) for label in sorted(query.labels))
        return (query.model_version, tuple(sorted(query.labels)), tuple(stamps), weights)

    def _boost_sum_sql(self, query: _Query) -> tuple[str, list[Any]]:
        """``movie_id, SUM(weight * score) FROM … GROUP BY movie_id``: the summed boosts, a row per movie."""
        placeholders = ", ".join("?" for _ in query.labels)
        score, params = "score", []
        if query.weighted:
            cases = " ".join("WHEN ? THEN ?" for _ in query.labels)
            score = f"score * CASE label {cases} END"
            for label in query.labels:
                params += [label, query.label_weights.get(label, 1.0)]
        sql = (
            f"movie_id, SUM({score}) FROM trend_scores"
            f" WHERE model_version = ? AND label IN ({placeholders}) GROUP BY movie_id"
        )
        return sql, [*params, query.model_version, *query.labels]

    def _boost(self, db: sqlite3.Connection, query: _Query) -> Boost:
        sql, params = self._boost_sum_sql(query)
        return Boost(self._boost_key(db, query), "SELECT " + sql, tuple(params), float(query.weight))

    def _boost_set(self, db: sqlite3.Connection, query: _Query) -> int:
        """Id of this connection's summed boosts for the requested labels (a temp table), built when the
        label set or one of its labels' scores changed; a trending label set is summed once, not per query."""
        key = self._boost_key(db, query)
        sets = self._boost_sets[id(db)]
        if key in sets:
            sets[key] = sets.pop(key)  # most recently used last
            return sets[key]
        if len(sets) >= BOOST_SETS_PER_CONNECTION:
            db.execute("DELETE FROM temp.boost WHERE boost_set = ?", (sets.pop(next(iter(sets))),))
        set_id = max(sets.values(), default=0) + 1
        sql, params = self._boost_sum_sql(query)
        db.execute(f"INSERT INTO temp.boost (boost_set, id, boost) SELECT ?, {sql}", [set_id, *params])
        sets[key] = set_id
        return set_id

    def _total(self, db: sqlite3.Connection, query: _Query) -> int:
        """How many movies match the text and the genre (what ``total`` reports)."""
        sql, params = self._candidates_sql(query.match, query.genre)
        return int(db.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0])

    def _candidates_sql(self, match: str, genre: str | None) -> tuple[str, list[Any]]:
        """(id, raw text relevance) of every movie that may be returned."""
        params: list[Any] = []
        if match:
            sql = (
                f"SELECT rowid AS id, -bm25(movie_fts, {self._bm25_weights}) AS raw"
                " FROM movie_fts WHERE movie_fts MATCH ?"
            )
            params.append(match)
            if genre:
                # `+rowid`: a rowid constraint handed to FTS5 re-runs the MATCH once per genre movie.
                sql += " AND +rowid IN (SELECT movie_id FROM movie_genres WHERE genre = ?)"
                params.append(genre)
        elif genre:
            sql = "SELECT movie_id AS id, 0.0 AS raw FROM movie_genres WHERE genre = ?"
            params.append(genre)
        else:
            sql = "SELECT id, 0.0 AS raw FROM movies"
        return sql, params

    def _text_ranking_sql(self, query: _Query, boost: int | None) -> tuple[str, list[Any]]:
        """Every text match scored (BM25 needs them all for the normaliser), each looked up in the summed
        boosts; rows: (id, text_score, score, total)."""
        candidates, params = self._candidates_sql(query.match, query.genre)
        text = "c.raw / NULLIF(n.top, 0)" if self.text_norm == "max" else "c.raw"
        if boost is None:
            sql = f"""
                WITH c AS MATERIALIZED ({candidates}),
                n AS (SELECT MAX(raw) AS top, COUNT(*) AS total FROM c),
                s AS (SELECT c.id AS id, COALESCE({text}, 0.0) AS text_score, n.total AS total FROM c, n)
                SELECT id, text_score, text_score AS score, total FROM s
                ORDER BY score DESC, id ASC LIMIT ? OFFSET ?
            """
            return sql, params
        sql = f"""
            WITH c AS MATERIALIZED ({candidates}),
            n AS (SELECT MAX(raw) AS top, COUNT(*) AS total FROM c),
            s AS (
                SELECT c.id AS id, COALESCE({text}, 0.0) AS text_score,
                       COALESCE(b.boost, 0.0) AS boost, n.total AS total
                FROM c CROSS JOIN n LEFT JOIN temp.boost b ON b.boost_set = ? AND b.id = c.id
            )
            SELECT id, text_score, text_score + ? * boost AS score, total FROM s
            ORDER BY score DESC, id ASC LIMIT ? OFFSET ?
        """
        return sql, params + [boost, float(query.weight)]

    def _browse_ranking_sql(self, query: _Query, boost: int | None, depth: int) -> tuple[str, list[Any]]:
        """No text: the best ``depth`` boosted candidates merged with the first ``depth`` unboosted ones by
        id (they all score 0), so the query never reads the whole catalogue; rows: (id, score)."""
        if query.genre:
            members = "SELECT movie_id FROM movie_genres WHERE genre = ?"
            genre_params: list[Any] = [query.genre]
        else:
            members, genre_params = "SELECT id FROM movies", []
        if boost is None:
            sql = f"SELECT id, 0.0 AS score FROM ({members.replace('movie_id', 'movie_id AS id')})"
            return sql + " ORDER BY id LIMIT ? OFFSET ?", genre_params
        weight = float(query.weight)
        # With a positive weight the (boost_set, boost DESC, id) index yields the best boosts in order.
        best = "ORDER BY b.boost DESC, b.id ASC LIMIT ?" if weight > 0 else ""
        sql = f"""
            SELECT id, score FROM (
                SELECT * FROM (
                    SELECT b.id AS id, 0.0 + ? * b.boost AS score FROM temp.boost b
                    WHERE b.boost_set = ? AND b.id IN ({members}) {best}
                )
                UNION ALL
                SELECT * FROM (
                    SELECT m.id AS id, 0.0 AS score
                    FROM ({members.replace("movie_id", "movie_id AS id")}) m
                    WHERE NOT EXISTS (SELECT 1 FROM temp.boost b WHERE b.boost_set = ? AND b.id = m.id)
                    ORDER BY m.id LIMIT ?
                )
            )
            ORDER BY score DESC, id ASC LIMIT ? OFFSET ?
        """
        params = [weight, boost, *genre_params, *([depth] if best else []), *genre_params, boost, depth]
        return sql, params

    def _hits(
        self,
        db: sqlite3.Connection,
        query: _Query,
        ranked: list[tuple[int, float, float]],
        generation: str | None,
    ) -> list[SearchHit]:
        """The page's documents and per-label scores, read for the page's ids only."""
        if not ranked:
            return []
        ids = [movie_id for movie_id, _, _ in ranked]
        marks = ", ".join("?" for _ in ids)
        docs = self._page_docs(db, ids, generation)
        stored: dict[int, dict[str, float]] = {}
        if query.boosted:
            labels = ", ".join("?" for _ in query.labels)
            rows = db.execute(
                "SELECT movie_id, label, score FROM trend_scores"
                f" WHERE model_version = ? AND label IN ({labels}) AND movie_id IN ({marks})",
                [query.model_version, *query.labels, *ids],
            ).fetchall()
            for movie_id, label, score in rows:
                stored.setdefault(movie_id, {})[label] = score
        hits = []
        for movie_id, text_score, score in ranked:
            movie = docs[movie_id]
            scores = stored.get(movie_id, {})
            hits.append(
                SearchHit(
                    id=movie_id,
                    title=movie.title,
                    text_score=float(text_score),
                    trend_scores={label: float(scores.get(label, 0.0)) for label in query.labels},
                    score=float(score),
                    release_year=movie.release_year,
                    genres=movie.genres,
                    overview=movie.overview,
                )
            )
        return hits

    def _page_docs(self, db: sqlite3.Connection, ids: list[int], generation: str | None) -> dict[int, _Doc]:
        """The parsed documents of ``ids``, from memory when this catalogue generation was read before."""
        cache = self._docs if generation is not None and generation == self._docs_generation else {}
        docs = {movie_id: cache[movie_id] for movie_id in ids if movie_id in cache}
        wanted = [movie_id for movie_id in ids if movie_id not in docs]
        if wanted:
            marks = ", ".join("?" for _ in wanted)
            rows = db.execute(f"SELECT id, doc FROM movies WHERE id IN ({marks})", wanted).fetchall()
            read = {movie_id: _doc(Movie.model_validate_json(doc)) for movie_id, doc in rows}
            docs.update(read)
            if generation is not None:
                self._remember_docs(generation, read)
        return docs

    def _remember_docs(self, generation: str, docs: dict[int, _Doc]) -> None:
        with self._readers_lock:
            if generation != self._docs_generation or len(self._docs) > MAX_CACHED_DOCS:
                self._docs, self._docs_generation = {}, generation
            self._docs.update(docs)


@dataclass(frozen=True)
class _Doc:
    """What a hit shows of its movie."""

    title: str
    release_year: int | None
    genres: tuple[str, ...]
    overview: str


def _doc(movie: Movie) -> _Doc:
    return _Doc(movie.title, movie.release_year, tuple(movie.genres), movie.overview)


@dataclass(frozen=True)
class _Query:
    match: str  # the FTS5 query ("" for no text)
    genre: str | None
    labels: tuple[str, ...]
    model_version: str
    weight: float
    label_weights: dict[str, float] = field(default_factory=dict)  # absent: 1.0

    @property
    def weighted(self) -> bool:
        return any(self.label_weights.get(label, 1.0) != 1.0 for label in self.labels)

    @property
    def boosted(self) -> bool:
        return bool(self.labels) and bool(self.model_version)


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
