"""FTS5's ``bm25()`` for OR-ed word queries, summed from cached per-word scores: the same doubles, faster.

FTS5 scores an OR query ``"w0" OR "w1" OR …`` per matching row as ``0.0 + c0 + c1 + …`` in phrase order,
where ``ci`` is phrase i's BM25 term: its IDF (from the rows matching phrase i alone), the row's weighted
hits of phrase i and the row's length. That term is exactly what ``-bm25()`` returns for the one-phrase
query ``"wi"``, and a row without phrase i adds ``0.0``. So each word's scores are asked of FTS5 once per
catalogue version, kept in memory, and a query adds them up in numpy in the same order: the same IEEE
operations on the same values, hence bit-identical text scores, with no ``bm25()`` call per matching row
(which costs ~4 µs a row, 40+ ms for a common word over the catalogue). ``tests/search/test_sqlite.py``
compares it with the SQL path on the full catalogue.

The caches are keyed by the catalogue's generation (a random token rewritten by every ``index``), so a
changed catalogue is never ranked with old statistics; trend score writes do not touch them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

MAX_CACHED_POSTINGS = 8_000_000  # (movie, score) pairs kept over all cached words: ~100 MB at most
MAX_CACHED_SETS = 64  # genres and summed label sets


@dataclass(frozen=True)
class Boost:
    """The summed label scores to add: ``sql`` (+ ``params``) yields (movie id, summed score) rows; ``key``
    names what they depend on (model version, labels, when each was scored)."""

    key: tuple[object, ...]
    sql: str
    params: tuple[object, ...]
    weight: float


@dataclass(frozen=True)
class Ranked:
    """The page: movie ids, raw text relevance and final score, plus the number of candidates."""

    ids: np.ndarray
    text: np.ndarray
    score: np.ndarray
    total: int


class _Lru:
    """A small thread-safe LRU of numpy arrays, bounded by entries and by total array length."""

    def __init__(self, max_entries: int, max_items: int | None = None) -> None:
        self._data: OrderedDict[object, tuple[np.ndarray, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._max_items = max_items
        self._items = 0

    def get(self, key: object) -> tuple[np.ndarray, ...] | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: object, value: tuple[np.ndarray, ...]) -> None:
        size = len(value[0])
        with self._lock:
            if key in self._data:
                return
            self._data[key] = value
            self._items += size
            while len(self._data) > self._max_entries or (
                self._max_items is not None and self._items > self._max_items and len(self._data) > 1
            ):
                _, old = self._data.popitem(last=False)
                self._items -= len(old[0])


class TextRanker:
    """Ranks text queries of one SQLite search database from cached per-word BM25 terms (thread-safe)."""

    def __init__(self, bm25_weights: str, normalise: bool) -> None:
        self._bm25 = f"-bm25(movie_fts, {bm25_weights})"
        self._normalise = normalise
        self._ids = _Lru(2)
        self._words = _Lru(1_000_000, MAX_CACHED_POSTINGS)
        self._sets = _Lru(MAX_CACHED_SETS)

    def rank(
        self,
        db: sqlite3.Connection,
        generation: str,
        phrases: list[str],
        genre: str | None,
        boost: Boost | None,
        window: tuple[int, int],
    ) -> Ranked:
        """The page ``window`` = (limit, offset) of ``phrases`` OR-ed (FTS5 phrases), within ``genre``."""
        ids = self._catalogue(db, generation)
        raw = np.zeros(len(ids))
        hit = np.full(len(ids), not phrases)  # no text: every movie is a candidate
        for phrase in phrases:
            positions, terms = self._word(db, generation, ids, phrase)
            raw[positions] += terms
            hit[positions] = True
        if genre is not None:
            hit &= self._genre_mask(db, generation, ids, genre)
        candidates = np.flatnonzero(hit)
        text = raw[candidates]
        if self._normalise:
            top = float(text.max()) if len(text) else 0.0
            text = text / top if top != 0.0 else np.zeros(len(text))
        score = text
        if boost is not None:
            score = text + boost.weight * self._boosts(db, generation, ids, boost)[candidates]
        page = _page(ids[candidates], score, *window)
        return Ranked(ids[candidates][page], text[page], score[page], len(candidates))

    def _catalogue(self, db: sqlite3.Connection, generation: str) -> np.ndarray:
        cached = self._ids.get(generation)
        if cached is None:
            rows = db.execute("SELECT rowid FROM movie_fts ORDER BY rowid").fetchall()
            cached = (np.array([r[0] for r in rows], dtype=np.int64),)
            self._ids.put(generation, cached)
        return cached[0]

    def _word(
        self, db: sqlite3.Connection, generation: str, ids: np.ndarray, phrase: str
    ) -> tuple[np.ndarray, np.ndarray]:
        key = (generation, phrase)
        cached = self._words.get(key)
        if cached is None:
            rows = db.execute(f"SELECT rowid, {self._bm25} FROM movie_fts WHERE movie_fts MATCH ?", (phrase,))
            found = np.array(rows.fetchall(), dtype=np.float64).reshape(-1, 2)
            positions = np.searchsorted(ids, found[:, 0].astype(np.int64))
            cached = (positions, found[:, 1].copy())
            self._words.put(key, cached)
        return cached[0], cached[1]

    def _genre_mask(self, db: sqlite3.Connection, generation: str, ids: np.ndarray, genre: str) -> np.ndarray:
        key = ("genre", generation, genre)
        cached = self._sets.get(key)
        if cached is None:
            rows = db.execute("SELECT movie_id FROM movie_genres WHERE genre = ?", (genre,)).fetchall()
            mask = np.zeros(len(ids), dtype=bool)
            mask[_positions(ids, np.array([r[0] for r in rows], dtype=np.int64))[0]] = True
            cached = (mask,)
            self._sets.put(key, cached)
        return cached[0]

    def _boosts(self, db: sqlite3.Connection, generation: str, ids: np.ndarray, boost: Boost) -> np.ndarray:
        """Every movie's summed boost in catalogue order (0 where it has none)."""
        full_key = ("boost", generation, boost.key)
        cached = self._sets.get(full_key)
        if cached is None:
            rows = np.array(db.execute(boost.sql, boost.params).fetchall(), dtype=np.float64).reshape(-1, 2)
            boosts = np.zeros(len(ids))
            positions, kept = _positions(ids, rows[:, 0].astype(np.int64))
            boosts[positions] = rows[kept, 1]
            cached = (boosts,)
            self._sets.put(full_key, cached)
        return cached[0]


def _positions(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the sorted ``ids`` of the ``wanted`` ids that are there, and which of ``wanted`` were."""
    positions = np.searchsorted(ids, wanted)
    inside = positions < len(ids)
    kept = np.flatnonzero(inside)
    kept = kept[ids[positions[kept]] == wanted[kept]]
    return positions[kept], kept


def _page(ids: np.ndarray, score: np.ndarray, limit: int, offset: int) -> np.ndarray:
    """Indices of the page, ordered by score descending then id (SQL's ORDER BY score DESC, id ASC)."""
    depth = offset + limit
    if depth <= 0 or offset >= len(ids):
        return np.zeros(0, dtype=np.int64)
    if depth < len(ids):
        # Everything scoring above the depth-th best is on or before the page; ties at it are sorted by id.
        threshold = -np.partition(-score, depth - 1)[depth - 1]
        chosen = np.flatnonzero(score >= threshold)
    else:
        chosen = np.arange(len(ids))
    order = chosen[np.lexsort((ids[chosen], -score[chosen]))]
    return order[offset:depth]
