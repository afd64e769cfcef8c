"""Trend detection interface: what is trending and where it is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Trend:
    """A trending hashtag with the words the classifier reads and why it trends."""

    hashtag: str  # display form, with '#': "#SharkWeek"
    label: str  # classifier text: "shark week"
    score: float  # burst score (higher = more unusual right now)
    count: int  # tweets in the current window
    baseline: float  # expected count from the tag's own decayed history


class TrendStore(Protocol):
    """Keeps the current top-N snapshot; implementations: SQLite (default), Redis."""

    def replace(self, trends: Sequence[Trend]) -> None:
        """Atomically replace the snapshot (readers never see half of one)."""
        ...

    def top(self, n: int | None = None) -> list[Trend]:
        """The current snapshot, best first."""
        ...
