"""Detection benchmark: known bursts injected into the shared tweets at random times, and how well the
trending top N finds them (``freshrank trends bench-detect``).

The background is the shared TweetEval tweets (their own hashtags) at a steady rate with random authors:
nothing in it bursts by construction, so every background tag that enters the top N is a false trend. Into
it go new tags at random times, in several sizes and shapes: *sudden* (all posts within 5 minutes),
*gradual* (a rate rising linearly over 30 minutes), both from as many distinct authors as posts, and *spam*
(one account posting the tag over 5 minutes), which must not trend. The engine's top N is read every
minute of event time after a warm-up of two windows (before that no tag has a history).

Figures: recall (injected bursts that enter the top N within their span plus one window), precision (the
share of distinct tags entering the top N that are injected bursts), time to detection (first entry minus
the burst's start), false trends per hour (distinct background or spam tags entering the top N, per hour
measured), spam that trended.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import median

from freshrank.config import TrendSettings
from freshrank.trends.engine import TrendEngine
from freshrank.trends.extract import extract_hashtags
from freshrank.trends.score import BurstTest

MINUTE_MS = 60_000
T0_MS = 1_800_000_000_000  # a multiple of every slide


@dataclass(frozen=True)
class Burst:
    """One injected tag: ``size`` posts from ``start_ms`` over ``span_ms``, by ``authors`` accounts."""

    tag: str
    shape: str  # sudden | gradual | spam
    size: int
    start_ms: int
    span_ms: int
    authors: int

    @property
    def positive(self) -> bool:
        return self.shape != "spam"

    def times(self, rng: random.Random) -> list[int]:
        if self.shape == "gradual":  # density rising linearly: inverse CDF of t² on [0, 1]
            return sorted(self.start_ms + int(self.span_ms * rng.random() ** 0.5) for _ in range(self.size))
        return sorted(self.start_ms + int(self.span_ms * rng.random()) for _ in range(self.size))


@dataclass(frozen=True)
class StreamSpec:
    hours: float = 4.0
    rate_per_s: float = 5.0
    users: int = 5000
    sizes: tuple[int, ...] = (10, 25, 50, 200)
    repeats: int = 2  # bursts per (shape, size)
    spam: int = 4  # one-author bursts of the largest size
    seed: int = 13


@dataclass
class DetectionResult:
    name: str
    recall: float
    precision: float
    false_trends_per_hour: float
    spam_trended: int
    median_minutes_to_detect: float | None
    recall_by_burst: dict[str, float] = field(default_factory=dict)
    minutes_by_burst: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def make_bursts(spec: StreamSpec, rng: random.Random) -> list[Burst]:
    """The injected set: every (shape, size) ``repeats`` times plus the spam, at random times after the
    warm-up and early enough to finish inside the stream."""
    end_ms = int(spec.hours * 3600_000)
    bursts: list[Burst] = []
    kinds = [
        (shape, size) for shape in ("sudden", "gradual") for size in spec.sizes for _ in range(spec.repeats)
    ]
    kinds += [("spam", max(spec.sizes))] * spec.spam
    for i, (shape, size) in enumerate(kinds):
        span = (30 if shape == "gradual" else 5) * MINUTE_MS
        start = rng.randrange(3600_000, end_ms - span - 10 * MINUTE_MS)
        authors = 1 if shape == "spam" else size
        bursts.append(Burst(f"injected{i:02d}{shape}{size}", shape, size, T0_MS + start, span, authors))
    return bursts


def make_stream(
    texts: Sequence[str], spec: StreamSpec, bursts: Sequence[Burst], rng: random.Random
) -> list[tuple[int, list[str], str]]:
    """(epoch ms, hashtags, author) of every post, in time order."""
    tags_of = {text: extract_hashtags(text) for text in set(texts)}
    total = int(spec.hours * 3600 * spec.rate_per_s)
    step = 1000.0 / spec.rate_per_s
    posts = [
        (
            T0_MS + int(i * step + rng.random() * step),
            tags_of[rng.choice(texts)],
            f"u{rng.randrange(spec.users)}",
        )
        for i in range(total)
    ]
    for burst in bursts:
        for k, ms in enumerate(burst.times(rng)):
            posts.append((ms, [burst.tag], f"{burst.tag}-a{k % burst.authors}"))
    posts.sort(key=lambda post: post[0])
    return posts


def detect(
    posts: Sequence[tuple[int, list[str], str]],
    bursts: Sequence[Burst],
    settings: TrendSettings,
    model: BurstTest | None,
    name: str,
    hours: float,
) -> DetectionResult:
    """Replay ``posts`` and read the top N every minute after the warm-up; score against ``bursts``."""
    engine = TrendEngine(settings, model)
    warmup_ms = T0_MS + 2 * settings.window_seconds * 1000
    first_seen: dict[str, int] = {}
    i, check = 0, warmup_ms
    while i < len(posts):
        j = i
        while j < len(posts) and posts[j][0] <= check:
            j += 1
        chunk = posts[i:j]
        if chunk:
            engine.add_batch([p[0] for p in chunk], [p[1] for p in chunk], [p[2] for p in chunk])
        i = j
        if check >= warmup_ms:
            engine.advance_to(check / 1000 + settings.allowed_lateness_seconds)
            for trend in engine.top():
                first_seen.setdefault(trend.hashtag.lstrip("#").casefold(), check)
        check += MINUTE_MS
    return _score(first_seen, bursts, settings, name, hours - 2 * settings.window_seconds / 3600)


def _score(
    first_seen: dict[str, int], bursts: Sequence[Burst], settings: TrendSettings, name: str, hours: float
) -> DetectionResult:
    by_tag = {b.tag: b for b in bursts}
    found: dict[str, float | None] = {}
    for burst in bursts:
        seen = first_seen.get(burst.tag)
        deadline = burst.start_ms + burst.span_ms + settings.window_seconds * 1000
        inside = seen is not None and burst.start_ms <= seen <= deadline
        found[burst.tag] = (seen - burst.start_ms) / MINUTE_MS if inside and seen is not None else None
    positives = [b for b in bursts if b.positive]
    hits = [b for b in positives if found[b.tag] is not None]
    false = [tag for tag in first_seen if tag not in by_tag or not by_tag[tag].positive]
    entered = len(first_seen)
    groups: dict[str, list[Burst]] = {}
    for b in positives:
        groups.setdefault(f"{b.shape} {b.size}", []).append(b)
    return DetectionResult(
        name=name,
        recall=len(hits) / len(positives) if positives else 0.0,
        precision=sum(1 for t in first_seen if t in by_tag and by_tag[t].positive) / entered
        if entered
        else 0.0,
        false_trends_per_hour=len(false) / hours,
        spam_trended=sum(1 for b in bursts if not b.positive and b.tag in first_seen),
        median_minutes_to_detect=median(found[b.tag] or 0.0 for b in hits) if hits else None,
        recall_by_burst={k: sum(found[b.tag] is not None for b in v) / len(v) for k, v in groups.items()},
        minutes_by_burst={
            k: median(m) if (m := [found[b.tag] or 0.0 for b in v if found[b.tag] is not None]) else None
            for k, v in groups.items()
        },
    )
