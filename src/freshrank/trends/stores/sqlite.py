"""SQLite trend store: the embedded default. One table holds the snapshot; replace() is one transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from freshrank.trends.base import Trend
from freshrank.trends.stores.codec import decode, encode, last, ranked, tag_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trend_snapshot (
    rank INTEGER PRIMARY KEY,
    tag TEXT NOT NULL UNIQUE,
    trend TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trend_meta (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""


def sqlite_path(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///path)")
    return Path(url[len(prefix) :].split("?", 1)[0])


class SQLiteTrendStore:
    """Snapshot in ``trend_snapshot``; ``trend_meta.written_at`` makes a snapshot past its TTL read empty."""

    def __init__(self, url: str, ttl_seconds: int = 3600) -> None:
        self.path = sqlite_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_seconds = ttl_seconds
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._snapshot: tuple[float, list[Trend]] | None = None  # (written_at, its trends)

    def replace(self, trends: Sequence[Trend]) -> None:
        rows = [(rank, tag_key(t.hashtag), encode(t)) for rank, t in enumerate(ranked(trends))]
        with self._transaction():
            self._db.execute("DELETE FROM trend_snapshot")
            self._db.executemany(
                "INSERT OR IGNORE INTO trend_snapshot(rank, tag, trend) VALUES (?, ?, ?)", rows
            )
            self._db.execute(
                "INSERT INTO trend_meta(name, value) VALUES ('written_at', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (time.time(),),
            )

    def top(self, n: int | None = None) -> list[Trend]:
        """The snapshot, decoded once per snapshot: readers (the API, several times a request) check only
        its ``written_at`` stamp, which every ``replace`` (here or in another process) rewrites."""
        written = self.written_at()
        if written is None or time.time() - written > self.ttl_seconds:
            return []
        cached = self._snapshot
        if cached is None or cached[0] != written:
            # Read after the stamp: at least as new as it; a newer snapshot has a newer stamp, re-read then.
            rows = self._db.execute("SELECT trend FROM trend_snapshot ORDER BY rank").fetchall()
            cached = (written, [decode(row[0]) for row in rows])
            self._snapshot = cached
        return list(cached[1]) if n is None else cached[1][: max(n, 0)]

    def history(self, hashtag: str, n: int | None = None) -> list[int]:
        if not self._fresh():
            return []
        query = "SELECT trend FROM trend_snapshot WHERE tag = ?"
        row = self._db.execute(query, (tag_key(hashtag),)).fetchone()
        return last(decode(row[0]).history, n) if row else []

    def written_at(self) -> float | None:
        row = self._db.execute("SELECT value FROM trend_meta WHERE name = 'written_at'").fetchone()
        return float(row[0]) if row else None

    def clear(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM trend_snapshot")
            self._db.execute("DELETE FROM trend_meta")

    def close(self) -> None:
        self._db.close()

    def _fresh(self) -> bool:
        written = self.written_at()
        return written is not None and time.time() - written <= self.ttl_seconds

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error (readers see the old or the new snapshot)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
