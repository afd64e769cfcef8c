"""Named snapshots of one query's ranking and metrics, kept in SQLite so they can be diffed later."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MAX_NAME_CHARS = 100
# A name is one URL path segment (/api/snapshots/{name}): no slash, backslash, ?, #, % or control characters.
NAME_PATTERN = r"^[^\x00-\x1f\x7f/\\?#%]+$"


def check_name(name: str) -> str:
    """``name``, or ValueError when it could not be read or deleted through the API later."""
    if not 0 < len(name) <= MAX_NAME_CHARS or not re.match(NAME_PATTERN, name) or name.strip() != name:
        raise ValueError(
            f"snapshot names are 1-{MAX_NAME_CHARS} characters without / \\ ? # % or control characters"
        )
    return name


_COLUMNS = "name, created_at, query, ranking, metrics"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    query TEXT NOT NULL,
    ranking TEXT NOT NULL,
    metrics TEXT NOT NULL
)
"""


class SnapshotError(Exception):
    """A snapshot that is missing, or a name that is taken."""


class SnapshotExists(SnapshotError):
    pass


class SnapshotNotFound(SnapshotError):
    pass


@dataclass(frozen=True)
class SnapshotQuery:
    """What was searched: text, the trends that boosted it, the genre filter and the model used."""

    text: str = ""
    trends: tuple[str, ...] = ()
    genre: str = ""
    model: str = ""


@dataclass(frozen=True)
class RankedDoc:
    doc_id: int
    title: str
    score: float
    grade: int | None = None


@dataclass(frozen=True)
class Snapshot:
    name: str
    query: SnapshotQuery
    ranking: list[RankedDoc]
    metrics: dict[str, float] = field(default_factory=dict)
    created_at: str = ""


@dataclass(frozen=True)
class DocMove:
    """A document's rank in two snapshots (1-based; None = absent) and how far it moved up."""

    doc_id: int
    title: str
    rank_a: int | None
    rank_b: int | None

    @property
    def status(self) -> str:
        if self.rank_a is None:
            return "new"
        if self.rank_b is None:
            return "dropped"
        return "same" if self.rank_a == self.rank_b else "moved"

    @property
    def movement(self) -> int | None:
        """Positive = moved up from ``a`` to ``b``."""
        if self.rank_a is None or self.rank_b is None:
            return None
        return self.rank_a - self.rank_b


@dataclass(frozen=True)
class SnapshotDiff:
    a: Snapshot
    b: Snapshot
    moves: list[DocMove]
    metric_deltas: dict[str, float]


def diff_rankings(a: list[RankedDoc], b: list[RankedDoc]) -> list[DocMove]:
    """Every document of ``b`` in its order, then those only in ``a`` (dropped) in theirs."""
    rank_a = {doc.doc_id: i for i, doc in enumerate(a, start=1)}
    rank_b = {doc.doc_id: i for i, doc in enumerate(b, start=1)}
    moves = [DocMove(doc.doc_id, doc.title, rank_a.get(doc.doc_id), rank_b[doc.doc_id]) for doc in b]
    moves += [
        DocMove(doc.doc_id, doc.title, rank_a[doc.doc_id], None) for doc in a if doc.doc_id not in rank_b
    ]
    return moves


def diff_snapshots(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    deltas = {name: b.metrics[name] - a.metrics[name] for name in a.metrics if name in b.metrics}
    return SnapshotDiff(a=a, b=b, moves=diff_rankings(a.ranking, b.ranking), metric_deltas=deltas)


class SnapshotStore:
    """One SQLite file; a connection per call, so any server thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def save(self, snapshot: Snapshot, *, replace: bool = False) -> Snapshot:
        """Store under ``snapshot.name``; an existing name is an error unless ``replace``."""
        stamped = Snapshot(
            name=check_name(snapshot.name),
            query=snapshot.query,
            ranking=list(snapshot.ranking),
            metrics=dict(snapshot.metrics),
            created_at=snapshot.created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        )
        row = (
            stamped.name,
            stamped.created_at,
            json.dumps(asdict(stamped.query)),
            json.dumps([asdict(doc) for doc in stamped.ranking]),
            json.dumps(stamped.metrics),
        )
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._connect() as db:
                db.execute(
                    f"{verb} INTO snapshots ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.IntegrityError as exc:
            raise SnapshotExists(f"a snapshot named {snapshot.name!r} exists already") from exc
        return stamped

    def get(self, name: str) -> Snapshot:
        with self._connect() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM snapshots WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise SnapshotNotFound(f"no snapshot named {name!r}")
        return _from_row(row)

    def list(self) -> list[Snapshot]:
        """All snapshots, newest first."""
        with self._connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM snapshots ORDER BY created_at DESC, name").fetchall()
        return [_from_row(row) for row in rows]

    def delete(self, name: str) -> None:
        with self._connect() as db:
            deleted = db.execute("DELETE FROM snapshots WHERE name = ?", (name,)).rowcount
        if not deleted:
            raise SnapshotNotFound(f"no snapshot named {name!r}")

    def diff(self, a: str, b: str) -> SnapshotDiff:
        return diff_snapshots(self.get(a), self.get(b))


def _from_row(row: tuple[str, str, str, str, str]) -> Snapshot:
    name, created_at, query, ranking, metrics = row
    q = json.loads(query)
    return Snapshot(
        name=name,
        created_at=created_at,
        query=SnapshotQuery(
            text=q["text"], trends=tuple(q["trends"]), genre=q["genre"], model=q.get("model", "")
        ),
        ranking=[RankedDoc(**doc) for doc in json.loads(ranking)],
        metrics={k: float(v) for k, v in json.loads(metrics).items()},
    )
