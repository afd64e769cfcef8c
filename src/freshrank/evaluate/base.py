"""Relevance judgments and the store that keeps them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Judgment:
    """When ``trend`` trends and search is restricted to ``genre`` ("" = all), ``doc_id`` has ``grade``."""

    trend: str
    genre: str
    doc_id: int
    grade: int

    @property
    def query_id(self) -> str:
        return f"{self.trend}|{self.genre}"


class JudgmentStore(Protocol):
    """Implementations by SQLAlchemy URL: SQLite (default), MySQL/MariaDB, PostgreSQL."""

    def add(self, judgments: Iterable[Judgment], who: str = "import") -> int:
        """Insert or change judgments, keeping every change with who and when; returns rows changed."""
        ...

    def judgments(self, trend: str | None = None, genre: str | None = None) -> list[Judgment]:
        ...
