"""Redis trend store: a sorted set ranks the snapshot, a hash holds each trend's details.

Keys (``prefix`` defaults to ``freshrank:trends``; set it with ``?prefix=`` in the URL):

* ``{prefix}:top``: sorted set, member = case-folded tag without '#', score = burst score;
* ``{prefix}:details``: hash, field = the same member, value = the trend as JSON
  (``{"hashtag", "label", "score", "count", "baseline", "authors", "history"}``);
* ``{prefix}:updated``: epoch seconds of the last snapshot.

``replace()`` writes all three in one MULTI/EXEC transaction (delete, write, expire), so readers see the
old snapshot or the new one, never a mix; every key expires after the TTL, so a dead stream leaves no
stale trends. Readers use one MULTI/EXEC to read the stamp, the ranking and the details consistently, and
keep the decoded snapshot: while ``updated`` is unchanged, ``top`` costs one GET.

A hung server (paused, not dead) must not hold every caller: connects and replies time out after
``?timeout=`` seconds (default ``DEFAULT_TIMEOUT_S``), and a circuit breaker per server (pybreaker, shared by
every store on that address in the process) opens at the first timeout: for
``?reset=`` seconds (default ``DEFAULT_RESET_S``) calls fail at once with ``CircuitOpen`` (a
``redis.ConnectionError``), then one trial call decides whether it closes again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pybreaker
import redis

from freshrank import breakers
from freshrank.trends.base import Trend
from freshrank.trends.stores.codec import decode, encode, last, ranked, tag_key

DEFAULT_PREFIX = "freshrank:trends"
DEFAULT_TIMEOUT_S = 1.0
DEFAULT_RESET_S = 3.0
T = TypeVar("T")


class CircuitOpen(redis.ConnectionError):
    """The server failed a moment ago: the call was not tried."""


def breaker_for(address: str, reset_s: float = DEFAULT_RESET_S) -> pybreaker.CircuitBreaker:
    """The process-wide breaker of one Redis server (``host:port/db``)."""
    return breakers.breaker_for(address, reset_s, (redis.ConnectionError, redis.TimeoutError, OSError))


class RedisTrendStore:
    """Top-N snapshot in Redis under a configurable key prefix, replaced atomically, expiring after a TTL."""

    def __init__(self, url: str, ttl_seconds: int = 3600) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = query.get("prefix", [DEFAULT_PREFIX])[0]
        self.ttl_seconds = ttl_seconds
        timeout = float(query.get("timeout", [DEFAULT_TIMEOUT_S])[0])
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self._redis = redis.Redis.from_url(clean, socket_connect_timeout=timeout, socket_timeout=timeout)
        address = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"  # no password in messages
        self._breaker = breaker_for(address, float(query.get("reset", [DEFAULT_RESET_S])[0]))
        self.top_key, self.details_key, self.updated_key = (
            f"{self.prefix}:top",
            f"{self.prefix}:details",
            f"{self.prefix}:updated",
        )
        self._snapshot: tuple[bytes, list[Trend]] | None = None  # (``updated`` stamp, its trends)

    @property
    def keys(self) -> tuple[str, str, str]:
        return self.top_key, self.details_key, self.updated_key

    def replace(self, trends: Sequence[Trend]) -> None:
        trends = ranked(trends)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(*self.keys)
        if trends:
            pipe.zadd(self.top_key, {tag_key(t.hashtag): t.score for t in trends})
            pipe.hset(self.details_key, mapping={tag_key(t.hashtag): encode(t) for t in trends})
        pipe.set(self.updated_key, f"{time.time():.6f}")  # the readers' cache key: one per snapshot
        for key in self.keys:
            pipe.expire(key, self.ttl_seconds)
        self._call(pipe.execute)

    def top(self, n: int | None = None) -> list[Trend]:
        """The snapshot, decoded once per snapshot: a reader (the API, on every search) asks Redis only for
        its ``updated`` stamp, which every ``replace`` (here or in another process) rewrites."""
        stamp = self._call(self._redis.get, self.updated_key)
        cached = self._snapshot
        if stamp is None or cached is None or cached[0] != stamp:
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(self.updated_key)
            pipe.zrevrange(self.top_key, 0, -1)
            pipe.hgetall(self.details_key)
            stamp, members, details = self._call(pipe.execute)
            cached = (stamp, ranked([decode(details[m]) for m in members if m in details]))
            self._snapshot = cached if stamp is not None else None
        return list(cached[1]) if n is None else cached[1][: max(n, 0)]

    def history(self, hashtag: str, n: int | None = None) -> list[int]:
        raw = self._call(self._redis.hget, self.details_key, tag_key(hashtag))
        return last(decode(raw).history, n) if raw else []

    def clear(self) -> None:
        self._call(self._redis.delete, *self.keys)

    def close(self) -> None:
        self._redis.close()

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return self._breaker.call(fn, *args)
        except pybreaker.CircuitBreakerError as exc:
            raise CircuitOpen(
                f"circuit open: Redis {self._breaker.name} failed <{self._breaker.reset_timeout:g} s ago, "
                "not retried yet"
            ) from exc
