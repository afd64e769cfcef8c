"""The embedded trend engine: event-time sliding windows over hashtag counts, ranked by burst score.

Scoring (shared with the Flink job in ``trends/flink/``; keep both in step)
--------------------------------------------------------------------------
Window size ``W = settings.window_seconds`` (default 1800 s), slide ``S = settings.slide_seconds``
(default 10 s); ``W`` must be a multiple of ``S``. Ticks are the multiples of ``S`` (epoch seconds).
At a tick ``t``, for every hashtag (case-folded, without '#'):

* ``c`` = number of posts carrying the tag with event time in the current window ``(t − W, t]``;
* ``p`` = number in the previous window of equal length ``(t − 2W, t − W]`` (the tag's own baseline);
* ``score = (c − p) / sqrt(p + 1)``: a Poisson-style z-score of the tag's velocity against its baseline.

A tag qualifies only if ``c ≥ min_count`` and, when the source carries authors (some post had a ``user``),
it has at least ``min_authors`` distinct authors in the current window. Tags on ``block_list`` (compared
case-folded, with or without '#') are never counted. Ranking: score descending, then ``c`` descending, then
the case-folded tag ascending. A post counts a tag once however often the tag appears in it. The display
form of a tag is its most common original spelling (all-time, while the tag is tracked).

Windows are right-closed: an event at exactly ``t`` belongs to the window ending at ``t``. Internally time
is integer milliseconds and a post with time ``ms`` falls in bucket ``ceil(ms / S_ms)``; the window ending at
tick ``k·S`` holds buckets ``k − n + 1 … k`` with ``n = W / S``.

Event time and late events
--------------------------
Watermark = (maximum event time seen) − ``allowed_lateness_seconds``. The current tick ``t`` is the largest
multiple of ``S`` not after the watermark; ``top()`` ranks the window ending at ``t``. Posts newer than
``t`` wait in their buckets and join the window when the watermark passes them. A post that arrives after
its bucket has left the current window (event time ≤ ``t − W``) is late: it is dropped and counted in
``stats.late``; it could only change a baseline that has already been used. ``finish()`` (end of a bounded
stream) moves the watermark to the maximum event time, so the final window ends at the first tick at or
after the last post. ``advance_to(now)`` moves the watermark by wall-clock time for idle live streams.

Memory
------
Per-slide buckets (tag → count) are kept for two windows (``2n`` buckets plus those waiting for the
watermark) and dropped as they age out; running sums ``c`` and ``p`` are updated incrementally when a bucket
crosses a window boundary, so a tick costs O(tags in the crossing buckets), not O(window). A tag whose
counts all age out is forgotten. At most ``max_tags`` distinct tags are tracked: when a new tag would
exceed the cap, the 10 % of tags with the lowest count over the last two windows plus the posts waiting
for the watermark (ties: arbitrary) are evicted with all their counts (``stats.evicted_tags``). Distinct
authors are tracked per tag as its ``AUTHOR_SAMPLE`` most recently seen authors, which decides
``min_authors`` exactly and reports counts up to that cap.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from freshrank.config import TrendSettings
from freshrank.trends.base import Trend
from freshrank.trends.extract import extract_hashtags
from freshrank.trends.labels import hashtag_to_label

HISTORY_BINS = 24  # sparkline points over the last two windows
AUTHOR_SAMPLE = 16
EVICT_FRACTION = 0.1
_BLOCKED = ""  # the key of a blocked tag: never counted
_NO_TIME = -(2**62)


@dataclass(frozen=True, slots=True)
class Post:
    """One post: its text, event time (datetime, naive = UTC, or epoch seconds) and author if known."""

    text: str
    created_at: datetime | float
    user: str | None = None
    hashtags: Sequence[str] | None = None  # pre-extracted (e.g. Bluesky facets); None: extract from text


@dataclass
class EngineStats:
    """Counters that explain what the engine did with its input."""

    posts: int = 0
    tagged_posts: int = 0
    late: int = 0
    evicted_tags: int = 0
    ticks: int = 0


def to_epoch_ms(created_at: datetime | float) -> int:
    """Event time in integer milliseconds (naive datetimes are UTC)."""
    if isinstance(created_at, datetime):
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        return round(created_at.timestamp() * 1000)
    return round(created_at * 1000)


def burst_score(count: int, baseline: int) -> float:
    """``(c − p) / sqrt(p + 1)``: the shared burst score."""
    return (count - baseline) / math.sqrt(baseline + 1)


def _tag_key(tag: str) -> str:
    return tag.lstrip("#＃").casefold()


class TrendEngine:
    """Counts hashtags of posts in event-time sliding windows and ranks them by burst score."""

    def __init__(self, settings: TrendSettings) -> None:
        if settings.slide_seconds <= 0 or settings.window_seconds % settings.slide_seconds:
            raise ValueError(
                f"window_seconds ({settings.window_seconds}) must be a positive multiple of "
                f"slide_seconds ({settings.slide_seconds})"
            )
        self.settings = settings
        self.stats = EngineStats()
        self._slide_ms = settings.slide_seconds * 1000
        self._n = settings.window_seconds // settings.slide_seconds
        self._lateness_ms = settings.allowed_lateness_seconds * 1000
        self._blocked = {_tag_key(tag) for tag in settings.block_list}
        self._max_ms = _NO_TIME
        self._k = _NO_TIME  # current tick, as a bucket index
        self._buckets: dict[int, dict[str, int]] = {}
        self._order: list[int] = []  # bucket indexes, ascending
        self._cur: dict[str, int] = {}  # c per tag: buckets k-n+1 .. k
        self._prev: dict[str, int] = {}  # p per tag: buckets k-2n+1 .. k-n
        self._key_of: dict[str, str] = {}  # original spelling -> case-folded key (or _BLOCKED)
        self._spellings: dict[str, list[str]] = {}  # key -> its original spellings
        self._spelling_counts: dict[str, int] = {}  # original spelling -> posts
        self._authors: dict[str, dict[str, int]] = {}  # key -> {user: last bucket}, most recent last
        self._saw_users = False

    # Input ------------------------------------------------------------------------------------------

    def add(self, post: Post) -> None:
        """Count one post."""
        tags = post.hashtags if post.hashtags is not None else extract_hashtags(post.text)
        self.add_tags(to_epoch_ms(post.created_at), tags, post.user)

    def add_many(self, posts: Iterable[Post]) -> None:
        for post in posts:
            self.add(post)

    def add_tags(self, ms: int, tags: Sequence[str], user: str | None = None) -> None:
        """Count one post given its event time (epoch ms) and hashtags (the fast path of replays)."""
        self.stats.posts += 1
        if ms > self._max_ms:
            self._max_ms = ms
            tick = (ms - self._lateness_ms) // self._slide_ms
            if tick > self._k:
                if self._k == _NO_TIME:
                    self._k = tick
                else:
                    self._advance(tick)
        if not tags:
            return
        k = self._k
        bucket_index = -(-ms // self._slide_ms)
        if bucket_index <= k - self._n:
            self.stats.late += 1
            return
        self.stats.tagged_posts += 1
        bucket = self._buckets.get(bucket_index)
        if bucket is None:
            bucket = self._buckets[bucket_index] = {}
            bisect.insort(self._order, bucket_index)
        counted = self._cur if bucket_index <= k else None
        key_of, spelling_counts = self._key_of, self._spelling_counts
        seen: set[str] | None = None if len(tags) == 1 else set()
        for tag in tags:
            key = key_of.get(tag)
            if key is None:
                key = self._new_spelling(tag)
            if not key:
                continue  # blocked
            if seen is not None:
                if key in seen:
                    continue
                seen.add(key)
            spelling_counts[tag] += 1
            bucket[key] = bucket.get(key, 0) + 1
            if counted is not None:
                counted[key] = counted.get(key, 0) + 1
            if user is not None:
                self._add_author(key, user, bucket_index)

    def finish(self) -> None:
        """End of a bounded stream: the watermark moves to the last event time."""
        if self._k != _NO_TIME:
            last = -(-self._max_ms // self._slide_ms)
            if last > self._k:
                self._advance(last)

    def advance_to(self, now: datetime | float) -> None:
        """Move the watermark by wall-clock time (live streams with quiet periods)."""
        ms = to_epoch_ms(now) - self._lateness_ms
        tick = ms // self._slide_ms
        if self._k != _NO_TIME and tick > self._k:
            self._advance(tick)

    # Output -----------------------------------------------------------------------------------------

    @property
    def tick(self) -> datetime | None:
        """End of the current window (UTC), None before the first post."""
        if self._k == _NO_TIME:
            return None
        return datetime.fromtimestamp(self._k * self._slide_ms / 1000, tz=UTC)

    @property
    def tracked_tags(self) -> int:
        return len(self._spellings)

    def counts(self, tag: str) -> tuple[int, int]:
        """``(c, p)`` of a tag at the current tick."""
        key = _tag_key(tag)
        return self._cur.get(key, 0), self._prev.get(key, 0)

    def top(self, n: int | None = None) -> list[Trend]:
        """The best ``n`` (default ``settings.top_n``) qualifying tags at the current tick."""
        n = self.settings.top_n if n is None else n
        min_count, min_authors = self.settings.min_count, self.settings.min_authors
        check_authors = self._saw_users and min_authors > 1
        prev = self._prev
        scored = []
        for key, count in self._cur.items():
            if count < min_count or (check_authors and self._author_count(key) < min_authors):
                continue
            baseline = prev.get(key, 0)
            scored.append((burst_score(count, baseline), count, key, baseline))
        best = heapq.nsmallest(n, scored, key=lambda row: (-row[0], -row[1], row[2]))
        return [self._trend(key, score, count, baseline) for score, count, key, baseline in best]

    # Internals --------------------------------------------------------------------------------------

    def _new_spelling(self, tag: str) -> str:
        key = _tag_key(tag)
        if not key or key in self._blocked:
            self._key_of[tag] = _BLOCKED
            return _BLOCKED
        if key not in self._spellings:
            if len(self._spellings) >= self.settings.max_tags:
                self._evict()
            self._spellings[key] = []
        self._spellings[key].append(tag)
        self._spelling_counts[tag] = 0
        self._key_of[tag] = key
        return key

    def _add_author(self, key: str, user: str, bucket_index: int) -> None:
        self._saw_users = True
        authors = self._authors.get(key)
        if authors is None:
            self._authors[key] = {user: bucket_index}
        elif authors.get(user, _NO_TIME) < bucket_index:
            authors[user] = bucket_index
            if len(authors) > 2 * AUTHOR_SAMPLE:
                recent = heapq.nlargest(AUTHOR_SAMPLE, authors.items(), key=lambda item: item[1])
                self._authors[key] = dict(recent)

    def _author_count(self, key: str) -> int:
        k = self._k
        start = k - self._n
        inside = sum(1 for b in self._authors.get(key, {}).values() if start < b <= k)
        return min(inside, AUTHOR_SAMPLE)

    def _advance(self, new_k: int) -> None:
        """Move the current tick to ``new_k``: buckets cross window boundaries, old ones are dropped."""
        old_k = self._k
        n, order, buckets = self._n, self._order, self._buckets
        self.stats.ticks += new_k - old_k
        # Buckets leaving the baseline window (or jumping past both windows after a quiet period).
        drop_to = bisect.bisect_right(order, new_k - 2 * n)
        retired = [buckets.pop(b) for b in order[:drop_to]]
        for b, bucket in zip(order[:drop_to], retired, strict=True):
            if b <= old_k - n:
                _subtract(self._prev, bucket)
            elif b <= old_k:
                _subtract(self._cur, bucket)
        del order[:drop_to]
        # Buckets entering the baseline window.
        lo, hi = bisect.bisect_right(order, old_k - n), bisect.bisect_right(order, new_k - n)
        for b in order[lo:hi]:
            if b <= old_k:
                _subtract(self._cur, buckets[b])
            _add(self._prev, buckets[b])
        # Buckets entering the current window.
        lo, hi = bisect.bisect_right(order, max(old_k, new_k - n)), bisect.bisect_right(order, new_k)
        for b in order[lo:hi]:
            _add(self._cur, buckets[b])
        self._k = new_k
        cur, prev = self._cur, self._prev
        gone = {key for bucket in retired for key in bucket if key not in cur and key not in prev}
        if gone:
            for key in gone.difference(*self._pending()):
                self._forget(key)

    def _pending(self) -> list[dict[str, int]]:
        """Buckets newer than the current tick, waiting for the watermark."""
        start = bisect.bisect_right(self._order, self._k)
        return [self._buckets[b] for b in self._order[start:]]

    def _forget(self, key: str) -> None:
        for spelling in self._spellings.pop(key, ()):
            self._key_of.pop(spelling, None)
            self._spelling_counts.pop(spelling, None)
        self._authors.pop(key, None)

    def _evict(self) -> None:
        """Drop the least active tags (lowest count over the last two windows) to make room."""
        victims_n = max(1, int(len(self._spellings) * EVICT_FRACTION))
        activity = dict.fromkeys(self._spellings, 0)
        for counts in (self._cur, self._prev, *self._pending()):
            for key, count in counts.items():
                if key in activity:
                    activity[key] += count
        victims = set(heapq.nsmallest(victims_n, activity, key=activity.__getitem__))
        for bucket in self._buckets.values():
            for key in victims.intersection(bucket):
                del bucket[key]
        for key in victims:
            self._cur.pop(key, None)
            self._prev.pop(key, None)
            self._forget(key)
        self.stats.evicted_tags += len(victims)

    def _display(self, key: str) -> str:
        spellings = sorted(self._spellings.get(key) or [key])
        return max(spellings, key=lambda spelling: self._spelling_counts.get(spelling, 0))

    def _history(self, key: str) -> tuple[int, ...]:
        k = self._k
        span = 2 * self._n
        first = k - span + 1
        bins = [0] * HISTORY_BINS
        lo, hi = bisect.bisect_left(self._order, first), bisect.bisect_right(self._order, k)
        for b in self._order[lo:hi]:
            count = self._buckets[b].get(key)
            if count:
                bins[(b - first) * HISTORY_BINS // span] += count
        return tuple(bins)

    def _trend(self, key: str, score: float, count: int, baseline: int) -> Trend:
        display = self._display(key)
        return Trend(
            hashtag="#" + display,
            label=hashtag_to_label(display) or key,
            score=score,
            count=count,
            baseline=float(baseline),
            authors=self._author_count(key) if self._saw_users else None,
            history=self._history(key),
        )


def _add(into: dict[str, int], bucket: dict[str, int]) -> None:
    for key, count in bucket.items():
        into[key] = into.get(key, 0) + count


def _subtract(into: dict[str, int], bucket: dict[str, int]) -> None:
    for key, count in bucket.items():
        left = into.get(key, 0) - count
        if left > 0:
            into[key] = left
        else:
            into.pop(key, None)
