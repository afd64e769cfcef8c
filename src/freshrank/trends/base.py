"""Trend detection interface: what is trending and where it is kept."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Trend:
    """A trending hashtag with the words the classifier reads and why it trends."""

    hashtag: str  # display form, with '#': "#SharkWeek"
    label: str  # classifier text: "shark week"
    score: float  # burst z (trends/score.py): Poisson test of the window count against ``expected``
    count: int  # posts in the current window (c)
    baseline: float  # posts in the previous window of equal length (p), the tag's own recent baseline
    authors: int | None = None  # distinct authors in the current window (None: the source has no authors)
    # Posts per bin over the last two windows, oldest first (a sparkline; see engine.HISTORY_BINS).
    history: tuple[int, ...] = field(default=())
    expected: float | None = None  # λ: posts expected without a burst (None: not recorded, older snapshot)
    evidence: int | None = None  # x: the posts tested (capped per author)

    @property
    def p_value(self) -> float:
        """One-sided p-value of ``score`` (``Φ(−z)``)."""
        return 0.5 * math.erfc(self.score / math.sqrt(2.0))

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of ``freshrank trends replay|top --json``."""
        return {
            "hashtag": self.hashtag,
            "label": self.label,
            "score": round(self.score, 6),
            "count": self.count,
            "baseline": self.baseline,
            "authors": self.authors,
            "history": list(self.history),
            "expected": None if self.expected is None else round(self.expected, 6),
            "evidence": self.evidence,
            # from the rounded score, so a snapshot read back from a store prints the same p-value
            "p_value": float(f"{0.5 * math.erfc(round(self.score, 6) / math.sqrt(2.0)):.6g}"),
        }


class TrendStore(Protocol):
    """Keeps the current top-N snapshot; implementations: SQLite (default), Redis."""

    def replace(self, trends: Sequence[Trend]) -> None:
        """Atomically replace the snapshot (readers never see half of one)."""
        ...

    def top(self, n: int | None = None) -> list[Trend]:
        """The current snapshot, best first; empty when it is older than the store's TTL."""
        ...

    def history(self, hashtag: str, n: int | None = None) -> list[int]:
        """The last ``n`` per-bin counts (oldest first) of a hashtag in the snapshot; [] if absent."""
        ...

    def clear(self) -> None:
        """Remove the snapshot."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
