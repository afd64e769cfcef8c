"""The JSON form of a trend inside a store (shared by the SQLite and Redis stores and the Flink sink)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from freshrank.trends.base import Trend


def tag_key(hashtag: str) -> str:
    """The store's member/key of a hashtag: case-folded, without '#'."""
    return hashtag.lstrip("#＃").casefold()


def encode(trend: Trend) -> str:
    return json.dumps(trend.to_dict(), ensure_ascii=False)


def decode(raw: str | bytes) -> Trend:
    data: dict[str, Any] = json.loads(raw)
    authors = data.get("authors")
    return Trend(
        hashtag=str(data["hashtag"]),
        label=str(data.get("label") or ""),
        score=float(data["score"]),
        count=int(data["count"]),
        baseline=float(data.get("baseline") or 0.0),
        authors=None if authors is None else int(authors),
        history=tuple(int(x) for x in data.get("history") or ()),
        expected=None if data.get("expected") is None else float(data["expected"]),
        evidence=None if data.get("evidence") is None else int(data["evidence"]),
    )


def ranked(trends: Sequence[Trend]) -> list[Trend]:
    """Best first: score descending, then count descending, then tag."""
    return sorted(trends, key=lambda t: (-t.score, -t.count, tag_key(t.hashtag)))


def last(history: Sequence[int], n: int | None) -> list[int]:
    values = list(history)
    return values if n is None else values[-n:] if n > 0 else []
