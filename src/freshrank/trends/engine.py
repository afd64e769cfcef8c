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
the case-folded tag ascending. A post counts a tag once however often the tag appears in it.

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

Memory and speed
----------------
Spellings are numbered once (``spellings.Spellings``: the compiled scanner's ids where installed). Per-slide
buckets count posts per spelling id (one C-level ``Counter.update`` per bucket and batch) and keep the
``(author, hashtags)`` of posts that have an author. Buckets live for two windows plus those waiting for the
watermark, and are dropped as they age out; ``c`` and ``p`` are running sums per case-folded tag, kept in
numpy arrays indexed by a small integer tag id and updated when a bucket crosses a window boundary. A numpy
array maps spelling ids to tag ids, so folding a bucket to ``(tag ids, counts)`` is an array look-up (new
spellings are case-folded in one call per bucket, never per post), and the fold is reused for its three
crossings: a slide costs a few vectorised adds over the tags in the crossing buckets, never O(window).
``add_batch`` with many posts finds the watermark, the tick of every post and the late posts with array
operations and hands each bucket's posts to ``Counter.update`` at once; ``add_planned`` takes a batch whose
plan (``windows.plan_batch``) and per-run counts were made by the replay's parser, and uses them as they
are when its own ticks agree. Between batches, when dead spelling ids pile up, the live ones are renumbered
(``_maybe_compact``), so the numbering stays bounded on an endless stream. A tag whose counts have all aged
out is forgotten (checked at least once per window). At most ``max_tags`` distinct tags are tracked,
enforced at every slide: when there are more, the excess plus 10 % of the cap with the lowest count over the
last two windows plus the posts waiting for the watermark (ties: the tag tracked first) are evicted with all
their counts (``stats.evicted_tags``); tags that first appear within the current slide may exceed the cap
until the next slide. Distinct authors are counted exactly, over the posts of the current window, when
``top()`` runs (only for the tags that pass ``min_count``). The display form is the most common spelling
over the last two windows.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice, repeat
from operator import is_not
from typing import Protocol

import numpy as np

from freshrank.config import TrendSettings
from freshrank.labels import hashtag_to_label
from freshrank.trends.base import Trend
from freshrank.trends.extract import dedupe_folded, extract_hashtags
from freshrank.trends.score import BurstModel, BurstTest
from freshrank.trends.spellings import Spellings
from freshrank.trends.windows import Plan, plan_batch

HISTORY_BINS = 24  # sparkline points over the last two windows
EVICT_FRACTION = 0.1
FORGET_BATCH = 20_000  # spellings of dropped buckets collected before checking which tags to forget
COMPACT_MIN = 200_000  # spelling ids handed out before dead ones are worth renumbering away
VECTOR_MIN = 64  # add_batch calls with at least this many posts take the array path
_BLOCKED = 0  # the id of blocked spellings: never counted
_UNTRACKED = -1  # the tag id of a spelling no tag tracks (yet)
_NO_TIME = -(2**62)

Fold = tuple[np.ndarray, np.ndarray]  # a bucket's (tag ids, counts), blocked spellings left out


@dataclass(frozen=True, slots=True)
class Post:
    """One post: its text, event time (datetime, naive = UTC, or epoch seconds) and author if known."""

    text: str
    created_at: datetime | float
    user: str | None = None
    hashtags: Sequence[str] | None = None  # pre-extracted (e.g. Bluesky facets); None: extract from text


class PlannedPosts(Protocol):
    """The hashtags and authors of a planned batch, produced only when needed."""

    def lists(self) -> tuple[list[list[str]], list[str | None]]:
        """Every post's hashtags and author."""

    def authors(self, positions: np.ndarray) -> Iterable[tuple[str, Sequence[str]]]:
        """``(author, hashtags)`` of the posts at ``positions`` (posts that have an author)."""

    def authors_of(
        self, positions: np.ndarray, spellings: np.ndarray, names: list[str]
    ) -> Iterable[tuple[str, int]] | None:
        """``(author, spelling id)`` for the hashtags among ``spellings`` of the posts at ``positions``, or
        None when the batch's ids are not those of ``names`` (a ``Spellings.names``)."""


class _Authors:
    """The ``(user, hashtags)`` of some posts of a planned batch, resolved only when iterated (by ``top``)."""

    __slots__ = ("positions", "posts")

    def __init__(self, posts: PlannedPosts, positions: np.ndarray) -> None:
        self.posts, self.positions = posts, positions

    def __iter__(self) -> Iterator[tuple[str, Sequence[str]]]:
        return iter(self.posts.authors(self.positions))

    def of(self, spellings: np.ndarray, names: list[str]) -> Iterable[tuple[str, int]] | None:
        return self.posts.authors_of(self.positions, spellings, names)


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


def velocity_score(count: int, baseline: int) -> float:
    """``(c − p) / sqrt(p + 1)``: the former burst score (kept as the detection benchmark's baseline)."""
    return (count - baseline) / math.sqrt(baseline + 1)


def _tag_key(tag: str) -> str:
    return tag.lstrip("#＃").casefold()


class TrendEngine:
    """Counts hashtags of posts in event-time sliding windows and ranks them by burst score."""

    def __init__(self, settings: TrendSettings, model: BurstTest | None = None) -> None:
        if settings.slide_seconds <= 0 or settings.window_seconds % settings.slide_seconds:
            raise ValueError(
                f"window_seconds ({settings.window_seconds}) must be a positive multiple of "
                f"slide_seconds ({settings.slide_seconds})"
            )
        self.settings = settings
        self.stats = EngineStats()
        self._model: BurstTest = model or BurstModel.of(settings)
        self._slide_ms = settings.slide_seconds * 1000
        self._n = settings.window_seconds // settings.slide_seconds
        self._lateness_ms = settings.allowed_lateness_seconds * 1000
        self._blocked = {_tag_key(tag) for tag in settings.block_list}
        self._max_ms = _NO_TIME
        self._k = _NO_TIME  # current tick, as a bucket index
        # Per slide bucket: posts per spelling id, and the (user, hashtags) of posts with an author.
        self._buckets: dict[int, Counter[int]] = {}
        self._posts: dict[int, list[Iterable[tuple[str, Sequence[str]]]]] = {}  # chunks of (user, tags)
        self._folds: dict[int, Fold] = {}  # bucket -> its fold, dropped when the bucket changes
        self._order: list[int] = []  # bucket indexes, ascending
        # Tags are case-folded keys with a small integer id (0: blocked); c and p are arrays indexed by id.
        self._ids: dict[str, int] = {}  # key -> id
        self._keys: list[str] = [""]  # id -> key ("" = free or blocked)
        self._free: list[int] = []
        self._cur = np.zeros(1024, dtype=np.int64)  # c per tag id: buckets k-n+1 .. k
        self._prev = np.zeros(1024, dtype=np.int64)  # p per tag id: buckets k-2n+1 .. k-n
        self._spell = Spellings()  # original spellings <-> spelling ids
        self._tag_of = np.full(1024, _UNTRACKED, dtype=np.int64)  # spelling id -> tag id (or _BLOCKED)
        self._spellings: dict[str, set[int]] = {}  # key -> its spelling ids, keys in order first tracked
        self._maybe_gone: set[int] = set()  # spelling ids of dropped buckets, to check for forgetting
        self._compact_at = COMPACT_MIN
        self._forget_k = _NO_TIME  # tick of the last check (at least one check per window)
        self._saw_users = False

    # Input ------------------------------------------------------------------------------------------

    def add(self, post: Post) -> None:
        """Count one post."""
        if post.hashtags is None:
            tags: Sequence[str] = extract_hashtags(post.text)
        else:
            tags = dedupe_folded([t.lstrip("#＃") for t in post.hashtags if t])
        self.add_tags(to_epoch_ms(post.created_at), tags, post.user)

    def add_many(self, posts: Iterable[Post]) -> None:
        for post in posts:
            self.add(post)

    def add_tags(self, ms: int, tags: Sequence[str], user: str | None = None) -> None:
        """Count one post given its event time (epoch ms) and hashtags."""
        self.add_batch([ms], [dedupe_folded(list(tags))], [user])

    def add_batch(
        self,
        times_ms: Sequence[int] | np.ndarray,
        tag_lists: Sequence[Sequence[str]],
        users: Sequence[str | None],
    ) -> None:
        """Count posts in arrival order, exactly as one ``add_tags`` call per post would (the fast path).

        Each post's hashtags must be unique when case-folded (``extract_hashtags`` output is); the lists
        are kept, not copied, so they must not change afterwards.
        """
        if len(times_ms) >= VECTOR_MIN:
            self._add_arrays(np.asarray(times_ms, dtype=np.int64), tag_lists, users)
        elif len(times_ms):
            self._add_each([int(ms) for ms in times_ms], tag_lists, users)
        self._maybe_compact()

    def _add_each(
        self, times_ms: list[int], tag_lists: Sequence[Sequence[str]], users: Sequence[str | None]
    ) -> None:
        """``add_batch`` for a few posts: a plain loop finds where the tick moves."""
        total = len(times_ms)
        self.stats.posts += total
        start = 0
        while start < total:
            if self._k == _NO_TIME:
                self._max_ms = times_ms[start]
                self._k = (times_ms[start] - self._lateness_ms) // self._slide_ms
            # Posts before ``stop`` leave the tick where it is; the post at ``stop`` moves it.
            advance_at = (self._k + 1) * self._slide_ms + self._lateness_ms
            stop, newest = start, self._max_ms
            for ms in islice(times_ms, start, None):
                if ms >= advance_at:
                    break
                if ms > newest:
                    newest = ms
                stop += 1
            self._max_ms = newest
            if stop > start:
                self._count(times_ms[start:stop], tag_lists[start:stop], users[start:stop])
            if stop < total:
                ms = times_ms[stop]
                self._max_ms = max(self._max_ms, ms)
                self._advance((ms - self._lateness_ms) // self._slide_ms)
            start = stop

    def _add_arrays(
        self, times: np.ndarray, tag_lists: Sequence[Sequence[str]], users: Sequence[str | None]
    ) -> None:
        """``add_batch`` for many posts: the tick each post is counted at, and late posts, as arrays."""
        total = len(times)
        if self._k == _NO_TIME:
            self._max_ms = int(times[0])
            self._k = (self._max_ms - self._lateness_ms) // self._slide_ms
        tagged = np.fromiter(map(bool, tag_lists), dtype=bool, count=total)
        authored = np.fromiter(map(is_not, users, repeat(None)), dtype=bool, count=total)
        self._apply(times, self._plan(times, tagged, authored), tag_lists, users)

    def _plan(self, times: np.ndarray, tagged: np.ndarray, authored: np.ndarray) -> Plan:
        return plan_batch(
            times, tagged, authored, self._max_ms, self._k, self._slide_ms, self._lateness_ms, self._n
        )

    @property
    def spellings(self) -> Spellings:
        """The spelling ids of this engine (``add_planned`` counts are in them); replaced when compacted."""
        return self._spell

    @property
    def windows(self) -> tuple[int, int, int]:
        """``(slide ms, allowed lateness ms, slides per window)``: what ``plan_batch`` needs besides state."""
        return self._slide_ms, self._lateness_ms, self._n

    def add_planned(
        self, times: np.ndarray, plan: Plan, counts: Sequence[Counter[int] | None], posts: PlannedPosts
    ) -> None:
        """``add_batch`` for a batch planned elsewhere (a replay worker) as if it were the first batch.

        ``plan`` is ``plan_batch(times, …, times[0], tick of times[0], *self.windows)``, ``counts`` the
        hashtag counts of each of its runs by id in ``self.spellings`` (None for a run without a bucket)
        and ``posts`` gives the posts' hashtags and authors when needed. The plan is used as it is when
        this engine's own ticks for the batch are the same (then runs, late posts and counts are too);
        otherwise the batch is counted from scratch. Either way the result is that of ``add_batch``.
        """
        total = len(times)
        if not total:
            return
        if self._k == _NO_TIME:
            self._max_ms = int(times[0])
            self._k = (self._max_ms - self._lateness_ms) // self._slide_ms
        if self._max_ms > times[0] or self._k > plan.ticks[0]:  # else the ticks are those of the plan
            newest = np.maximum.accumulate(times)
            np.maximum(newest, self._max_ms, out=newest)
            ticks = (newest - self._lateness_ms) // self._slide_ms
            np.maximum(ticks, self._k, out=ticks)
            if not np.array_equal(ticks, plan.ticks):
                self.add_batch(times, *posts.lists())
                return
        self.stats.posts += total
        self.stats.late += plan.late
        self.stats.tagged_posts += plan.counted
        self._max_ms = max(self._max_ms, plan.newest)
        for run, run_counts in zip(plan.runs, counts, strict=True):
            if run.tick > self._k:
                self._advance(run.tick)
            if run.bucket is not None:
                assert run_counts is not None
                chunk = _Authors(posts, run.authors) if len(run.authors) else None
                self._flush_counts(run.bucket, run_counts, chunk)
        self._maybe_compact()

    def _apply(
        self,
        times: np.ndarray,
        plan: Plan,
        tag_lists: Sequence[Sequence[str]],
        users: Sequence[str | None],
    ) -> None:
        """Count a planned batch: move the tick and flush each run to its bucket."""
        self.stats.posts += len(times)
        self.stats.late += plan.late
        self.stats.tagged_posts += plan.counted
        self._max_ms = max(self._max_ms, plan.newest)
        for run in plan.runs:
            if run.tick > self._k:
                self._advance(run.tick)
            if run.bucket is None or run.posts is None:
                continue
            tags = list(map(tag_lists.__getitem__, run.posts.tolist()))
            authors = [(users[a], tag_lists[a]) for a in run.authors.tolist()]
            self._flush(run.bucket, tags, authors)

    def _count(
        self, times_ms: Sequence[int], tag_lists: Sequence[Sequence[str]], users: Sequence[str | None]
    ) -> None:
        """Count posts while the tick stays put: runs of posts in one bucket go to C-level Counter updates."""
        slide, late_limit = self._slide_ms, self._k - self._n
        run_bucket = _NO_TIME
        run_tags: list[Sequence[str]] = []
        run_posts: list[tuple[str, Sequence[str]]] = []
        late = tagged = 0
        for ms, tags, user in zip(times_ms, tag_lists, users, strict=True):
            if not tags:
                continue
            b = -(-ms // slide)
            if b != run_bucket:
                if run_tags:
                    self._flush(run_bucket, run_tags, run_posts)
                    run_tags, run_posts = [], []
                run_bucket = b
            if b <= late_limit:
                late += 1
                continue
            tagged += 1
            run_tags.append(tags)
            if user is not None:
                run_posts.append((user, tags))
        if run_tags:
            self._flush(run_bucket, run_tags, run_posts)
        self.stats.late += late
        self.stats.tagged_posts += tagged

    def _bucket(self, b: int) -> Counter[int]:
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = Counter()
            self._posts[b] = []
            bisect.insort(self._order, b)
        else:
            self._folds.pop(b, None)
        return bucket

    def _flush(
        self, b: int, tag_lists: Sequence[Sequence[str]], posts: list[tuple[str, Sequence[str]]]
    ) -> None:
        counts = Counter(self._spell.intern(chain.from_iterable(tag_lists)).tolist())
        self._bucket(b).update(counts)
        if posts:
            self._saw_users = True
            self._posts[b].append(posts)
        if b <= self._k:  # out of order but inside the current window: count it in c right away
            ids, values = self._fold(counts)
            np.add.at(self._cur, ids, values)

    def _flush_counts(
        self, b: int, counts: Counter[int], posts: Iterable[tuple[str, Sequence[str]]] | None
    ) -> None:
        """``_flush`` with the run's hashtags already counted (first spelling first)."""
        self._bucket(b).update(counts)
        if posts is not None:
            self._saw_users = True
            self._posts[b].append(posts)
        if b <= self._k:
            ids, values = self._fold(counts)
            np.add.at(self._cur, ids, values)

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
        tag_id = self._ids.get(_tag_key(tag))
        if tag_id is None:
            return 0, 0
        return int(self._cur[tag_id]), int(self._prev[tag_id])

    def volumes(self) -> tuple[int, int]:
        """``(V, Vp)``: hashtag uses of all tracked tags in the current and the previous window."""
        return int(self._cur.sum()), int(self._prev.sum())

    def top(self, n: int | None = None) -> list[Trend]:
        """The best ``n`` (default ``settings.top_n``) qualifying tags at the current tick (``score.py``)."""
        n = self.settings.top_n if n is None else n
        model, min_authors = self._model, self.settings.min_authors
        ids = np.flatnonzero(self._cur >= max(self.settings.min_count, 1))
        keys = self._keys
        volume, prev_volume = self.volumes()
        # The evidence is at most c and z grows with it, so z(c) < min_z rules a tag out before its authors
        # are counted (the exact distinct-author count is the expensive part).
        candidates = []
        for tag_id, count, baseline in zip(
            ids.tolist(), self._cur[ids].tolist(), self._prev[ids].tolist(), strict=True
        ):
            expected = model.expected(baseline, volume, prev_volume)
            if model.z(count, expected) >= model.min_z:
                candidates.append((keys[tag_id], count, expected))
        authors = self._window_authors({key for key, _, _ in candidates}) if self._saw_users else {}
        scored = []
        for key, count, expected in candidates:
            voices = len(authors.get(key, ())) if self._saw_users else None
            if voices is not None and voices < min_authors:
                continue
            evidence = model.evidence(count, voices)
            z = model.z(evidence, expected)
            if z >= model.min_z:
                scored.append((-z, -count, key, expected, evidence))
        scored.sort()
        return [
            self._trend(key, -neg_z, -neg_count, authors, expected, evidence)
            for neg_z, neg_count, key, expected, evidence in scored[:n]
        ]

    # Internals --------------------------------------------------------------------------------------

    def _track(self, spellings: np.ndarray) -> np.ndarray:
        """Track new spelling ids, in order: their tag ids (a new id for a new key), or _BLOCKED."""
        names = [self._spell.names[s] for s in spellings.tolist()]
        folded = "\0".join(names).casefold().split("\0")  # one call, not one per spelling
        if len(folded) != len(names):  # a NUL inside a spelling
            folded = [name.casefold() for name in names]
        ids = []
        for spelling, key in zip(spellings.tolist(), folded, strict=True):
            key = key.lstrip("#＃")
            if not key or key in self._blocked:
                ids.append(_BLOCKED)
                continue
            tag_id = self._ids.get(key)
            if tag_id is None:
                tag_id = self._new_id(key)
                self._spellings[key] = set()
            self._spellings[key].add(spelling)
            ids.append(tag_id)
        self._tag_of[spellings] = ids
        return np.array(ids, dtype=np.int64)

    def _new_id(self, key: str) -> int:
        if self._free:
            tag_id = self._free.pop()
            self._keys[tag_id] = key
        else:
            tag_id = len(self._keys)
            self._keys.append(key)
            if tag_id >= len(self._cur):
                grow = len(self._cur)
                self._cur = np.concatenate([self._cur, np.zeros(grow, dtype=np.int64)])
                self._prev = np.concatenate([self._prev, np.zeros(grow, dtype=np.int64)])
        self._ids[key] = tag_id
        return tag_id

    def _fold(self, counts: Counter[int]) -> Fold:
        """``(tag ids, counts)`` of a bucket's spellings; new spellings are tracked, in bucket order."""
        spellings = np.fromiter(counts, dtype=np.intp, count=len(counts))
        ids = self._tags_of(spellings)
        new = np.flatnonzero(ids == _UNTRACKED)
        if len(new):
            ids[new] = self._track(spellings[new])
        values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        if not ids.all():  # blocked spellings count nothing
            keep = ids != _BLOCKED
            ids, values = ids[keep], values[keep]
        return ids, values

    def _tags_of(self, spellings: np.ndarray) -> np.ndarray:
        """The tag ids of spelling ids (a copy): _UNTRACKED, _BLOCKED or a tag's id."""
        if len(self._tag_of) < len(self._spell):
            grow = max(len(self._spell), 2 * len(self._tag_of)) - len(self._tag_of)
            self._tag_of = np.concatenate([self._tag_of, np.full(grow, _UNTRACKED, dtype=np.int64)])
        return self._tag_of[spellings]

    @staticmethod
    def _spelling_counts(bucket: Counter[int]) -> tuple[np.ndarray, np.ndarray]:
        size = len(bucket)
        spellings = np.fromiter(bucket.keys(), dtype=np.intp, count=size)
        return spellings, np.fromiter(bucket.values(), dtype=np.int64, count=size)

    def _maybe_compact(self) -> None:
        """Renumber the spellings still in use when dead ones pile up (memory stays bounded on endless
        streams); only between batches, since a planned batch's counts use the ids of its time."""
        if len(self._spell) < self._compact_at:
            return
        live = set(chain.from_iterable(self._buckets.values()))
        live.update(chain.from_iterable(self._spellings.values()))
        kept = np.array(sorted(live), dtype=np.intp)
        fresh = Spellings(native=self._spell.native)
        names = self._spell.names
        fresh.intern(names[i] for i in kept.tolist())
        remap = np.full(len(self._spell), _UNTRACKED, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        self._tag_of = self._tags_of(kept)
        self._buckets = {
            b: Counter(dict(zip(remap[list(bucket)].tolist(), bucket.values(), strict=True)))
            for b, bucket in self._buckets.items()
        }
        self._spellings = {key: set(remap[list(ids)].tolist()) for key, ids in self._spellings.items()}
        self._maybe_gone = {int(remap[s]) for s in self._maybe_gone if s in live}
        self._spell = fresh
        self._compact_at = max(COMPACT_MIN, 2 * len(fresh))

    def _bucket_fold(self, b: int) -> Fold:
        fold = self._folds.get(b)
        if fold is None:
            fold = self._folds[b] = self._fold(self._buckets[b])
        return fold

    def _advance(self, new_k: int) -> None:
        """Move the current tick to ``new_k``: buckets cross window boundaries, old ones are dropped."""
        old_k = self._k
        n, order, buckets = self._n, self._order, self._buckets
        self.stats.ticks += new_k - old_k
        # Buckets leaving the baseline window (or jumping past both windows after a quiet period).
        drop_to = bisect.bisect_right(order, new_k - 2 * n)
        retired = []
        for b in order[:drop_to]:
            if b <= old_k:
                ids, counts = self._bucket_fold(b)
                np.subtract.at(self._prev if b <= old_k - n else self._cur, ids, counts)
            retired.append(buckets.pop(b))
            del self._posts[b]
            self._folds.pop(b, None)
        del order[:drop_to]
        # Buckets entering the baseline window.
        lo, hi = bisect.bisect_right(order, old_k - n), bisect.bisect_right(order, new_k - n)
        for b in order[lo:hi]:
            ids, counts = self._bucket_fold(b)
            if b <= old_k:
                np.subtract.at(self._cur, ids, counts)
            np.add.at(self._prev, ids, counts)
        # Buckets entering the current window.
        lo, hi = bisect.bisect_right(order, max(old_k, new_k - n)), bisect.bisect_right(order, new_k)
        for b in order[lo:hi]:
            ids, counts = self._bucket_fold(b)
            np.add.at(self._cur, ids, counts)
        self._k = new_k
        for bucket in retired:
            self._maybe_gone.update(bucket)
        if len(self._maybe_gone) > FORGET_BATCH or new_k - self._forget_k >= n:
            self._forget_k = new_k
            self._forget_gone()
        if len(self._spellings) > self.settings.max_tags:
            self._evict()

    def _forget_gone(self) -> None:
        """Forget tags none of whose spellings is counted any more (checked in batches, not every tick)."""
        gone = np.fromiter(self._maybe_gone, dtype=np.intp, count=len(self._maybe_gone))
        self._maybe_gone = set()
        candidates = np.unique(self._tags_of(gone))
        candidates = candidates[candidates > _BLOCKED]
        if not len(candidates):
            return
        candidates = candidates[(self._cur[candidates] == 0) & (self._prev[candidates] == 0)]
        pending: set[int] = set()
        for b in self._order[bisect.bisect_right(self._order, self._k) :]:
            pending.update(self._buckets[b])
        for tag_id in candidates.tolist():
            key = self._keys[tag_id]
            if pending.isdisjoint(self._spellings.get(key, ())):
                self._forget(key)

    def _forget(self, key: str) -> None:
        for spelling in self._spellings.pop(key, ()):
            self._tag_of[spelling] = _UNTRACKED
        tag_id = self._ids.pop(key, None)
        if tag_id is not None:
            self._cur[tag_id] = self._prev[tag_id] = 0
            self._keys[tag_id] = ""
            self._free.append(tag_id)

    def _evict(self) -> None:
        """Drop the least active tags (lowest count over the last two windows) to get under the cap."""
        excess = len(self._spellings) - self.settings.max_tags
        victims_n = excess + int(self.settings.max_tags * EVICT_FRACTION)
        keys = list(self._spellings)
        ids = np.fromiter(map(self._ids.__getitem__, keys), dtype=np.intp, count=len(keys))
        activity = self._cur + self._prev
        for b in self._order[bisect.bisect_right(self._order, self._k) :]:
            spellings, counts = self._spelling_counts(self._buckets[b])
            np.add.at(activity, np.maximum(self._tags_of(spellings), _BLOCKED), counts)
        # ties: the key tracked first goes first (a stable sort in tracking order)
        victims = {keys[i] for i in np.argsort(activity[ids], kind="stable")[:victims_n].tolist()}
        victim_ids = np.fromiter((self._ids[key] for key in victims), dtype=np.int64, count=len(victims))
        for bucket in self._buckets.values():
            spellings, _ = self._spelling_counts(bucket)
            for spelling in spellings[np.isin(self._tags_of(spellings), victim_ids)].tolist():
                del bucket[spelling]
        self._folds.clear()
        for key in victims:
            self._forget(key)
        self.stats.evicted_tags += len(victims)

    def _window_authors(self, keys: set[str]) -> dict[str, set[str]]:
        """Distinct authors per key over the posts of the current window (only for ``keys``)."""
        authors: dict[str, set[str]] = {key: set() for key in keys}
        if not keys:
            return authors
        names = self._spell.names
        by_id = {s: authors[key] for key in keys for s in self._spellings.get(key, ())}
        by_spelling = {names[s]: found for s, found in by_id.items()}
        wanted = np.fromiter(by_id, dtype=np.int64, count=len(by_id))
        lo = bisect.bisect_right(self._order, self._k - self._n)
        hi = bisect.bisect_right(self._order, self._k)
        for b in self._order[lo:hi]:
            for chunk in self._posts[b]:
                pairs = chunk.of(wanted, names) if isinstance(chunk, _Authors) else None
                if pairs is not None:  # a planned batch: its ids are ours, so arrays pick the posts
                    for user, spelling in pairs:
                        by_id[spelling].add(user)
                    continue
                for user, tags in chunk:
                    for tag in tags:
                        found = by_spelling.get(tag)
                        if found is not None:
                            found.add(user)
        return authors

    def _display(self, key: str) -> str:
        """The most common spelling over the last two windows (ties: the first in sorted order)."""
        names = self._spell.names
        spellings = sorted(self._spellings.get(key, ()), key=names.__getitem__)
        if len(spellings) < 2:
            return names[spellings[0]] if spellings else key
        totals = dict.fromkeys(spellings, 0)
        for bucket in self._buckets.values():
            for spelling in spellings:
                totals[spelling] += bucket.get(spelling, 0)
        return names[max(spellings, key=totals.__getitem__)]

    def _history(self, key: str) -> tuple[int, ...]:
        k = self._k
        span = 2 * self._n
        first = k - span + 1
        spellings = self._spellings.get(key, ())
        bins = [0] * HISTORY_BINS
        lo, hi = bisect.bisect_left(self._order, first), bisect.bisect_right(self._order, k)
        for b in self._order[lo:hi]:
            bucket = self._buckets[b]
            count = sum(bucket.get(spelling, 0) for spelling in spellings)
            if count:
                bins[(b - first) * HISTORY_BINS // span] += count
        return tuple(bins)

    def _trend(
        self, key: str, score: float, count: int, authors: dict[str, set[str]], expected: float, evidence: int
    ) -> Trend:
        display = self._display(key)
        return Trend(
            hashtag="#" + display,
            label=hashtag_to_label(display) or key,
            score=score,
            count=count,
            baseline=float(self._prev[self._ids[key]]),
            authors=len(authors.get(key, ())) if self._saw_users else None,
            history=self._history(key),
            expected=expected,
            evidence=evidence,
        )
