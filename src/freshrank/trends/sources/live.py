"""What every live source shares: reconnect with exponential backoff, a resume cursor, de-duplication."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import websockets

from freshrank.trends.engine import Post

log = logging.getLogger("freshrank.trends")


class SourceError(Exception):
    """A failure that retrying cannot fix (bad credentials, a URL that does not exist)."""


class RetryableError(Exception):
    """The server ended or refused the stream in a way that a reconnect can fix."""

    def __init__(self, message: str, delay_floor: float = 0.0) -> None:
        super().__init__(message)
        self.delay_floor = delay_floor  # e.g. the wait a 429 asks for


@dataclass
class Backoff:
    """Exponential backoff with jitter: initial, initial·factor, … capped at ``maximum``."""

    initial: float = 1.0
    maximum: float = 120.0
    factor: float = 2.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor**attempt)
        return base * (1 + random.uniform(-self.jitter, self.jitter))


class RecentIds:
    """The last ``size`` ids seen, to drop posts a resume delivers twice."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def seen(self, post_id: str) -> bool:
        """True if already seen; records it otherwise."""
        if post_id in self._ids:
            return True
        self._ids[post_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return False


_RETRYABLE = (
    OSError,
    asyncio.TimeoutError,
    httpx.TransportError,
    websockets.ConnectionClosed,
    websockets.InvalidHandshake,
    RetryableError,
)


class ReconnectingSource:
    """Runs ``_session()`` forever, reconnecting after errors with backoff; a post resets the backoff."""

    name = "live"

    def __init__(self, backoff: Backoff | None = None, max_reconnects: int | None = None) -> None:
        self.backoff = backoff or Backoff()
        self.max_reconnects = max_reconnects
        self.reconnects = 0
        self.cursor: str | None = None  # where a reconnect resumes (source-specific meaning)

    async def posts(self) -> AsyncIterator[Post]:
        attempt = 0
        while True:
            floor = 0.0
            try:
                async for post in self._session():
                    attempt = 0
                    yield post
                log.info("%s: stream ended; reconnecting", self.name)
            except _RETRYABLE as exc:
                floor = exc.delay_floor if isinstance(exc, RetryableError) else 0.0
                log.warning("%s: %s; reconnecting", self.name, exc or type(exc).__name__)
            if self.max_reconnects is not None and self.reconnects >= self.max_reconnects:
                log.warning("%s: giving up after %d reconnects", self.name, self.reconnects)
                return
            self.reconnects += 1
            await asyncio.sleep(max(floor, self.backoff.delay(attempt)))
            attempt += 1

    def _session(self) -> AsyncIterator[Post]:
        """One connection: yield posts until it ends or fails."""
        raise NotImplementedError


def check_status(response: httpx.Response, source: str) -> None:
    """Raise SourceError for errors a retry cannot fix, RetryableError for those it can."""
    code = response.status_code
    if code < 400:
        return
    if code in (401, 403, 404):
        raise SourceError(f"{source}: HTTP {code} from {response.url} (check the URL and the token)")
    retry_after = response.headers.get("retry-after", "")
    floor = float(retry_after) if retry_after.isdigit() else 0.0
    raise RetryableError(f"HTTP {code} from {response.url}", delay_floor=floor)
