"""The Python parts of the Flink job: the reference parsing of the posts the Java fast path leaves to Python
(``helper.py`` serves them), and the job's ranked rows as trends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from freshrank.labels import hashtag_to_label
from freshrank.trends.base import Trend
from freshrank.trends.extract import extract_hashtags
from freshrank.trends.sources.replay import parse_time_ms

log = logging.getLogger(__name__)
MAX_LOGGED_BAD_TIMES = 20
UNREADABLE = 0  # epoch ms the job filters out (so a post at exactly 1970-01-01T00:00:00Z is dropped)


def tag_key(tag: str) -> str:
    """The case-folded counting key of a hashtag (the embedded engine's rule)."""
    return tag.lstrip("#＃").casefold()


class PostTime:
    """``created_at`` (ISO-8601, epoch ms, or epoch s below 1e11) → epoch ms; 0 when unreadable.

    Not None: Flink's watermark needs a time on every row, so the job filters time 0 out after it.
    """

    def __init__(self) -> None:
        self.bad = 0

    def __call__(self, created_at: str | None, text: str | None) -> int:
        if created_at is None or text is None:
            return self._reject(created_at, "missing text or created_at")
        try:
            try:  # JSON numbers reach Flink's STRING column as their text ("1.7E12" included)
                ms = parse_time_ms(float(created_at))
            except ValueError:
                ms = parse_time_ms(created_at)
        except (ValueError, OverflowError) as exc:
            return self._reject(created_at, str(exc))
        return ms if ms > 0 else self._reject(created_at, "not after 1970-01-01")

    def _reject(self, created_at: str | None, reason: str) -> int:
        self.bad += 1
        if self.bad <= MAX_LOGGED_BAD_TIMES:
            log.warning("skipping a post with unreadable created_at %r: %s", (created_at or "")[:80], reason)
        return UNREADABLE


class PostTags:
    """A post's hashtags as ``(key, spelling)`` rows: each key once, blocked tags dropped."""

    def __init__(self, block_list: Iterable[str]) -> None:
        self.blocked = {tag_key(tag) for tag in block_list}

    def __call__(self, text: str | None) -> Iterator[tuple[str, str]]:
        if not text:
            return
        seen: set[str] = set()
        for spelling in extract_hashtags(text):
            key = tag_key(spelling)
            if key and key not in self.blocked and key not in seen:
                seen.add(key)
                yield key, spelling


@dataclass
class TopRow:
    """One row of the job's ranking: a tag in the top N of the window ending at ``window_end_ms``."""

    window_end_ms: int
    key: str
    spelling: str
    count: int
    baseline: int
    authors: int
    authored: int
    score: float
    rank: int
    evidence: int | None = None
    expected: float | None = None

    def to_trend(self) -> Trend:
        return Trend(
            hashtag="#" + self.spelling,
            label=hashtag_to_label(self.spelling) or self.key,
            score=self.score,
            count=self.count,
            baseline=float(self.baseline),
            authors=self.authors if self.authored else None,
            expected=self.expected,
            evidence=self.evidence,
        )


def window_trends(window: dict[str, Any]) -> list[Trend]:
    """The trends of one of the job's windows (labels from the display spelling, as the engine's)."""
    return [
        TopRow(
            window_end_ms=int(window["end"]),
            key=row["key"],
            spelling=row["spelling"],
            count=row["c"],
            baseline=row["p"],
            authors=row["authors"],
            authored=row["authored"],
            score=row["score"],
            rank=rank,
            evidence=row["evidence"],
            expected=row["expected"],
        ).to_trend()
        for rank, row in enumerate(window["rows"], start=1)
    ]
