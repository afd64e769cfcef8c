"""Relevance judgments, evaluation runs and the store that keeps both."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

MAX_TREND_CHARS = 255  # indexed column on MariaDB (utf8mb4): longer hashtags are refused, never truncated
MAX_GENRE_CHARS = 100
MAX_WHO_CHARS = 100

OnConflict = Literal["update", "keep", "fail"]


@dataclass(frozen=True, order=True)
class QueryId:
    """A judged query: ``trend`` trending and search restricted to ``genre`` ("" = the whole catalogue).

    Its text form ``trend|genre`` keys per-query metrics in JSON, the run history and model cards; ``parse``
    splits at the last ``|`` (a genre never holds one).
    """

    trend: str
    genre: str = ""

    def __str__(self) -> str:
        return f"{self.trend}|{self.genre}"

    @classmethod
    def parse(cls, text: str) -> QueryId:
        trend, sep, genre = text.rpartition("|")
        return cls(trend, genre) if sep else cls(text, "")


Qrels = dict[QueryId, dict[int, int]]
"""Graded judgments per query (unlisted documents grade 0), as ranx's ``Qrels``."""

Run = dict[QueryId, list[int]]
"""Ranked document ids per query, as ranx's ``Run`` (ranks instead of scores)."""


@dataclass(frozen=True)
class Judgment:
    """When ``trend`` trends and search is restricted to ``genre`` ("" = all), ``doc_id`` has ``grade``."""

    trend: str
    genre: str
    doc_id: int
    grade: int

    @property
    def qid(self) -> QueryId:
        return QueryId(self.trend, self.genre)

    @property
    def query_id(self) -> str:
        return str(self.qid)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.trend, self.genre, self.doc_id)


@dataclass(frozen=True)
class JudgmentChange:
    """One entry of the audit trail: ``old_grade`` None = added, ``new_grade`` None = removed."""

    trend: str
    genre: str
    doc_id: int
    old_grade: int | None
    new_grade: int | None
    who: str
    at: datetime
    source: str = ""


@dataclass
class ImportResult:
    """What ``JudgmentStore.add`` did; ``conflicts`` are judgments whose stored grade differs."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: int = 0  # conflicts left as stored (on_conflict="keep")
    conflicts: list[tuple[Judgment, int]] = field(default_factory=list)  # (incoming, stored grade)

    @property
    def written(self) -> int:
        return self.added + self.changed


class ConflictError(ValueError):
    """Raised by ``add(on_conflict="fail")`` before anything is written."""

    def __init__(self, conflicts: list[tuple[Judgment, int]]) -> None:
        self.conflicts = conflicts
        first = ", ".join(f"{j.query_id} doc {j.doc_id}: {old} -> {j.grade}" for j, old in conflicts[:3])
        super().__init__(
            f"{len(conflicts)} judgment(s) would change a stored grade ({first}…); nothing written"
        )


@dataclass
class EvaluationRun:
    """One stored evaluation (``kind="evaluate"``) or comparison (``kind="compare"``)."""

    kind: str
    classifier: str
    model_version: str
    catalog_size: int
    params: dict[str, Any]
    trends: list[str]
    mean: dict[str, float]
    baseline_mean: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # comparison: deltas, p-values, warnings
    created_at: datetime | None = None
    id: int | None = None


class JudgmentStore(Protocol):
    """Implementations by SQLAlchemy URL: SQLite (default), MySQL/MariaDB, PostgreSQL."""

    def add(
        self,
        judgments: Iterable[Judgment],
        who: str = "import",
        source: str = "",
        on_conflict: OnConflict = "update",
    ) -> ImportResult:
        """Insert or change judgments in one transaction, keeping every change with who and when."""
        ...

    def remove(self, trend: str, genre: str, doc_id: int, who: str = "user") -> bool:
        """Delete one judgment (the audit trail keeps it); False when there was none."""
        ...

    def judgments(self, trend: str | None = None, genre: str | None = None) -> list[Judgment]: ...

    def changes(
        self, trend: str | None = None, genre: str | None = None, doc_id: int | None = None
    ) -> list[JudgmentChange]:
        """The audit trail, oldest first."""
        ...

    def record_run(self, run: EvaluationRun) -> int:
        """Store an evaluation run; returns its id."""
        ...

    def runs(self, kind: str | None = None, limit: int | None = None) -> list[EvaluationRun]:
        """Stored runs, oldest first (the newest ``limit`` when given)."""
        ...

    def close(self) -> None: ...
