"""Redis trend store: a sorted set ranks the snapshot, a hash holds each trend's details.

Keys (``prefix`` defaults to ``freshrank:trends``; set it with ``?prefix=`` in the URL):

* ``{prefix}:top``: sorted set, member = case-folded tag without '#', score = burst score;
* ``{prefix}:details``: hash, field = the same member, value = the trend as JSON
  (``{"hashtag", "label", "score", "count", "baseline", "authors", "history"}``);
* ``{prefix}:updated``: epoch seconds of the last snapshot.

``replace()`` writes all three in one MULTI/EXEC transaction (delete, write, expire), so readers see the
old snapshot or the new one, never a mix; every key expires after the TTL, so a dead stream leaves no
stale trends. Readers also use one MULTI/EXEC to read the ranking and the details consistently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis

from freshrank.trends.base import Trend
from freshrank.trends.stores.codec import decode, encode, last, ranked, tag_key

DEFAULT_PREFIX = "freshrank:trends"


class RedisTrendStore:
    """Top-N snapshot in Redis under a configurable key prefix, replaced atomically, expiring after a TTL."""

    def __init__(self, url: str, ttl_seconds: int = 3600) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = query.get("prefix", [DEFAULT_PREFIX])[0]
        self.ttl_seconds = ttl_seconds
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self._redis = redis.Redis.from_url(clean, socket_connect_timeout=5, socket_timeout=10)
        self.top_key, self.details_key, self.updated_key = (
            f"{self.prefix}:top",
            f"{self.prefix}:details",
            f"{self.prefix}:updated",
        )

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
        pipe.set(self.updated_key, f"{time.time():.3f}")
        for key in self.keys:
            pipe.expire(key, self.ttl_seconds)
        pipe.execute()

    def top(self, n: int | None = None) -> list[Trend]:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrevrange(self.top_key, 0, -1)
        pipe.hgetall(self.details_key)
        members, details = pipe.execute()
        trends = [decode(details[m]) for m in members if m in details]
        trends = ranked(trends)
        return trends if n is None else trends[: max(n, 0)]

    def history(self, hashtag: str, n: int | None = None) -> list[int]:
        raw = self._redis.hget(self.details_key, tag_key(hashtag))
        return last(decode(raw).history, n) if raw else []

    def clear(self) -> None:
        self._redis.delete(*self.keys)

    def close(self) -> None:
        self._redis.close()
