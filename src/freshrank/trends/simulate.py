"""Replay streams with a known answer: a steady background, an always-popular tag and a burst.

The shared tweets carry no timestamps, so the replay assigns them: background posts are sampled (with
replacement, seeded) from the tweets and spread evenly over the time span; the always-popular tag arrives at
a constant rate throughout; the burst tag arrives at its own rate only inside ``[burst_at, burst_at +
burst_seconds)``. Injected posts reuse a sampled tweet text with the tag appended, so they look like the
background. Users are drawn from a pool so the distinct-author rule has something to check.
"""

from __future__ import annotations

import gzip
import heapq
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from freshrank.trends.engine import Post, to_epoch_ms

DEFAULT_START = datetime(2026, 12, 24, 8, 0, tzinfo=UTC)


def load_texts(path: Path, limit: int | None = None) -> list[str]:
    """Tweet texts from a JSONL(.gz) file of ``{"text": ...}`` objects."""
    opener = gzip.open if path.suffix == ".gz" else open
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text")
            if isinstance(text, str):
                texts.append(text)
            if limit is not None and len(texts) >= limit:
                break
    return texts


def _users(rng: random.Random, pool: int) -> Iterator[str | None]:
    while True:
        yield f"user{rng.randrange(pool)}" if pool else None


def steady(
    texts: Sequence[str],
    start: datetime,
    seconds: float,
    rate_per_s: float,
    *,
    tag: str | None = None,
    users: int = 1000,
    seed: int = 0,
) -> Iterator[Post]:
    """Posts at a constant rate over ``[start, start + seconds)``: sampled tweets, with ``#tag`` appended."""
    rng = random.Random(seed)
    total = int(seconds * rate_per_s)
    step = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
    who = _users(rng, users)
    for i in range(total):
        text = rng.choice(texts) if texts else ""
        if tag:
            text = f"{text} #{tag}"
        at = start + timedelta(seconds=i * step + rng.random() * step)
        yield Post(text=text, created_at=at, user=next(who))


@dataclass(frozen=True)
class Scenario:
    """A background stream plus an always-popular tag and a tag that bursts at a known time."""

    start: datetime = DEFAULT_START
    seconds: float = 2 * 3600
    background_rate: float = 5.0
    popular_tag: str | None = "love"
    popular_rate: float = 0.5
    burst_tag: str | None = "christmas"
    burst_at_seconds: float = 6600  # 1 h 50 min after start
    burst_seconds: float = 300
    burst_rate: float = 0.5
    users: int = 1000
    seed: int = 7

    @property
    def burst_at(self) -> datetime:
        return self.start + timedelta(seconds=self.burst_at_seconds)

    def posts(self, texts: Sequence[str]) -> Iterator[Post]:
        """All posts in event-time order."""
        streams: list[Iterator[Post]] = [
            steady(texts, self.start, self.seconds, self.background_rate, users=self.users, seed=self.seed)
        ]
        if self.popular_tag:
            streams.append(
                steady(
                    texts,
                    self.start,
                    self.seconds,
                    self.popular_rate,
                    tag=self.popular_tag,
                    users=self.users,
                    seed=self.seed + 1,
                )
            )
        if self.burst_tag:
            streams.append(
                steady(
                    texts,
                    self.burst_at,
                    self.burst_seconds,
                    self.burst_rate,
                    tag=self.burst_tag,
                    users=self.users,
                    seed=self.seed + 2,
                )
            )
        return merge(streams)


def merge(streams: Iterable[Iterable[Post]]) -> Iterator[Post]:
    """Merge time-ordered streams into one time-ordered stream."""
    return heapq.merge(*streams, key=lambda post: to_epoch_ms(post.created_at))


def shuffle_within(posts: Iterable[Post], seconds: float, seed: int = 0) -> Iterator[Post]:
    """Bounded out-of-orderness: delay each post's arrival by up to ``seconds`` (event times unchanged)."""
    rng = random.Random(seed)
    keyed = ((to_epoch_ms(p.created_at) + rng.random() * seconds * 1000, i, p) for i, p in enumerate(posts))
    return (post for _, _, post in sorted(keyed, key=lambda row: (row[0], row[1])))


def post_to_json(post: Post, epoch_ms: bool = False) -> str:
    """One replay line: ``{"text", "created_at", "user"?}`` with ISO-8601 UTC or epoch-ms time."""
    ms = to_epoch_ms(post.created_at)
    created: str | int = (
        ms
        if epoch_ms
        else (
            datetime.fromtimestamp(ms / 1000, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    )
    row: dict[str, object] = {"text": post.text, "created_at": created}
    if post.user is not None:
        row["user"] = post.user
    return json.dumps(row, ensure_ascii=False)


def write_jsonl(posts: Iterable[Post], out: Path | IO[str], epoch_ms: bool = False) -> int:
    """Write posts as replay JSONL; returns the number of lines."""
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8") as fh:
            return write_jsonl(posts, fh, epoch_ms)
    lines = 0
    for post in posts:
        out.write(post_to_json(post, epoch_ms) + "\n")
        lines += 1
    return lines
