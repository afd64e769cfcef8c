"""X API v2 filtered-stream consumer (needs a bearer token).

``GET https://api.x.com/2/tweets/search/stream?tweet.fields=created_at,author_id,entities`` sends one JSON
object per line: ``{"data": {"id", "text", "created_at", "author_id", "entities": {"hashtags": [{"tag"}]}},
"matching_rules": [...]}``; blank lines are keep-alives (every ~20 s) and ``{"errors": [...]}`` lines
announce an operational disconnect. Rules are managed separately (``/2/tweets/search/stream/rules``).
Backoff follows X's guidance: HTTP 429 waits at least ``rate_limit_wait`` (default 60 s, doubling),
other errors back off exponentially. The stream offers resumption through ``backfill_minutes`` (up to 5,
on access levels that have it): with ``backfill_minutes > 0`` a reconnect asks for it and tweets already
seen are dropped by id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx

from freshrank.trends.engine import Post
from freshrank.trends.extract import extract_hashtags
from freshrank.trends.sources.live import (
    Backoff,
    RecentIds,
    ReconnectingSource,
    RetryableError,
    SourceError,
    check_status,
    log,
)
from freshrank.trends.sources.replay import parse_time_ms

DEFAULT_URL = "https://api.x.com/2/tweets/search/stream"
FIELDS = "created_at,author_id,entities"


def post_from_tweet(tweet: dict[str, Any]) -> Post:
    text = str(tweet.get("text") or "")
    entities = tweet.get("entities") or {}
    tags = [str(h["tag"]) for h in entities.get("hashtags") or () if h.get("tag")] or extract_hashtags(text)
    return Post(
        text=text,
        created_at=parse_time_ms(tweet["created_at"]) / 1000,
        user=str(tweet.get("author_id") or "") or None,
        hashtags=tags,
    )


class XSource(ReconnectingSource):
    name = "x"

    def __init__(
        self,
        token: str,
        url: str = DEFAULT_URL,
        backfill_minutes: int = 0,
        backoff: Backoff | None = None,
        max_reconnects: int | None = None,
        rate_limit_wait: float = 60.0,
        read_timeout: float = 60.0,
    ) -> None:
        super().__init__(backoff, max_reconnects)
        if not token:
            raise SourceError("x: a bearer token is required (--token or FRESHRANK_X_BEARER_TOKEN)")
        self.token, self.url = token, url
        self.backfill_minutes = max(0, min(backfill_minutes, 5))
        self.rate_limit_wait = rate_limit_wait
        self.read_timeout = read_timeout
        self._ids = RecentIds()
        self._rate_limited = 0

    def connect_url(self) -> str:
        params = {"tweet.fields": FIELDS}
        if self.backfill_minutes and self.cursor:
            params["backfill_minutes"] = str(self.backfill_minutes)
        return f"{self.url}?{urlencode(params)}"

    async def _session(self) -> AsyncIterator[Post]:
        timeout = httpx.Timeout(30.0, read=self.read_timeout)
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": "freshrank"}
        async with (
            httpx.AsyncClient(timeout=timeout, headers=headers) as client,
            client.stream("GET", self.connect_url()) as response,
        ):
            if response.status_code == 429:
                wait = self.rate_limit_wait * 2**self._rate_limited
                self._rate_limited += 1
                raise RetryableError("HTTP 429 (rate limited)", delay_floor=wait)
            check_status(response, self.name)
            self._rate_limited = 0
            async for line in response.aiter_lines():
                if not line.strip():
                    continue  # keep-alive
                post = self._post(line)
                if post is not None:
                    yield post

    def _post(self, line: str) -> Post | None:
        try:
            message = json.loads(line)
        except ValueError:
            log.debug("x: skipping malformed line %.200r", line)
            return None
        if not isinstance(message, dict):
            return None
        if "data" not in message:
            if message.get("errors"):
                raise RetryableError(f"stream error: {message['errors'][0]}")
            return None
        tweet = message["data"]
        tweet_id = str(tweet.get("id") or "")
        if not tweet_id or self._ids.seen(tweet_id):
            return None
        self.cursor = tweet_id
        try:
            return post_from_tweet(tweet)
        except (KeyError, TypeError, ValueError):
            log.debug("x: skipping malformed tweet %.200r", tweet)
            return None
