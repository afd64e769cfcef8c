"""Ad-hoc labels of anonymous callers: scored into a bounded in-memory cache, never into the search backend.

Bounded three ways (``search.adhoc_*`` settings): at most ``size`` labels, each kept ``ttl`` seconds, and at
most ``per_client`` new labels per client per ``window`` seconds (beyond it: ``RateLimited`` → HTTP 429 with
Retry-After). A label is computed by one caller at a time; others asking for it meanwhile wait for it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Scorer = Callable[[Sequence[str]], Mapping[str, Mapping[int, float]]]
"""Calibrated scores of labels (label → movie id → score), computed now."""

MAX_CLIENTS = 10_000  # rate-limit windows kept; the least recently seen client is forgotten beyond it
WAIT_SECONDS = 120.0  # how long a caller waits for another caller's computation of the same label


class RateLimited(Exception):
    """A client asked for more new labels than its window allows."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many new trend labels: retry after {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Entry:
    scores: Mapping[int, float]
    expires: float


class AdhocCache:
    """label → calibrated scores, bounded in size and age, filled under a per-client rate limit."""

    def __init__(
        self,
        scorer: Scorer,
        size: int,
        ttl_seconds: float,
        per_client: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scorer = scorer
        self.size = size
        self.ttl = ttl_seconds
        self.per_client = per_client
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()  # guards the dicts only; scoring runs outside it
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, threading.Event] = {}
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def scores(self, client: str, labels: Sequence[str]) -> dict[str, Mapping[int, float]]:
        """Scores of ``labels`` from the cache, computing the missing ones (may raise ``RateLimited``)."""
        found: dict[str, Mapping[int, float]] = {}
        for label in dict.fromkeys(labels):
            scores = self._one(client, label)
            if scores is not None:
                found[label] = scores
        return found

    def _one(self, client: str, label: str) -> Mapping[int, float] | None:
        with self._lock:
            cached = self._cached(label)
            if cached is not None:
                return cached
            event = self._inflight.get(label)
            owner = event is None
            if owner:
                self._charge(client)
                event = self._inflight[label] = threading.Event()
        assert event is not None
        if not owner:
            event.wait(WAIT_SECONDS)
            with self._lock:
                return self._cached(label)
        try:
            scores = self._scorer([label]).get(label, {})
            with self._lock:
                self._entries[label] = _Entry(scores, self._clock() + self.ttl)
                self._entries.move_to_end(label)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            return scores
        finally:
            with self._lock:
                self._inflight.pop(label, None)
            event.set()

    def _cached(self, label: str) -> Mapping[int, float] | None:
        entry = self._entries.get(label)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[label]
            return None
        self._entries.move_to_end(label)
        return entry.scores

    def _charge(self, client: str) -> None:
        """Count one new label for ``client``; raise ``RateLimited`` when its window is full."""
        now = self._clock()
        seen = self._clients.pop(client, None) or deque()
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        self._clients[client] = seen
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        if len(seen) >= self.per_client:
            raise RateLimited(max(1.0, seen[0] + self.window - now))
        seen.append(now)
