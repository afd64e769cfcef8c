"""Mastodon streaming API consumer: public, local or hashtag timelines over SSE or WebSocket.

Endpoints (https://docs.joinmastodon.org/methods/streaming/): SSE ``GET /api/v1/streaming/public``
(``/public/local``, ``/hashtag?tag=…``) sends ``event: update`` / ``data: <status JSON>`` blocks and
``:thump`` heartbeats; the WebSocket ``/api/v1/streaming?stream=public`` sends ``{"event": "update",
"payload": "<status JSON>"}``. A token (``Authorization: Bearer``) is optional on servers whose public
streams are open. The stream has no resume cursor, so after a reconnect the gap is filled from the REST
timeline (``/api/v1/timelines/public?min_id=<last id>``, or ``/timelines/tag/<tag>``), de-duplicated by id.
Status HTML is turned into text; hashtags come from the status's ``tags`` (else from the text).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
import websockets

from freshrank.trends.engine import Post
from freshrank.trends.extract import extract_hashtags
from freshrank.trends.sources.live import Backoff, RecentIds, ReconnectingSource, check_status, log
from freshrank.trends.sources.replay import parse_time_ms

TIMELINES = ("public", "local", "hashtag")


class _Text(HTMLParser):
    """Visible text of status HTML: paragraphs and line breaks become newlines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p") and self.parts:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()


def post_from_status(status: dict[str, Any]) -> Post:
    """A Post from a Mastodon status (a boost counts as its booster posting the original)."""
    original = status.get("reblog") or status
    text = html_to_text(str(original.get("content") or ""))
    tags = [str(t["name"]) for t in original.get("tags") or () if t.get("name")] or extract_hashtags(text)
    account = status.get("account") or {}
    return Post(
        text=text,
        created_at=parse_time_ms(status["created_at"]) / 1000,
        user=str(account.get("acct") or account.get("id") or "") or None,
        hashtags=tags,
    )


class MastodonSource(ReconnectingSource):
    name = "mastodon"

    def __init__(
        self,
        base_url: str,
        timeline: str = "public",
        tag: str | None = None,
        token: str | None = None,
        transport: str = "sse",
        backoff: Backoff | None = None,
        max_reconnects: int | None = None,
        read_timeout: float = 90.0,
    ) -> None:
        super().__init__(backoff, max_reconnects)
        if timeline not in TIMELINES:
            raise ValueError(f"timeline must be one of {TIMELINES}, got {timeline!r}")
        if timeline == "hashtag" and not tag:
            raise ValueError("the hashtag timeline needs a tag")
        if transport not in ("sse", "websocket"):
            raise ValueError(f"transport must be 'sse' or 'websocket', got {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.timeline, self.tag = timeline, (tag or "").lstrip("#")
        self.token, self.transport = token, transport
        self.read_timeout = read_timeout
        self._ids = RecentIds()

    # Paths ------------------------------------------------------------------------------------------

    def sse_url(self) -> str:
        path = {"public": "public", "local": "public/local", "hashtag": "hashtag"}[self.timeline]
        query = f"?{urlencode({'tag': self.tag})}" if self.timeline == "hashtag" else ""
        return f"{self.base_url}/api/v1/streaming/{path}{query}"

    def websocket_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        stream = {"public": "public", "local": "public:local", "hashtag": "hashtag"}[self.timeline]
        params = {"stream": stream, **({"tag": self.tag} if self.timeline == "hashtag" else {})}
        if self.token:
            params["access_token"] = self.token
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/api/v1/streaming", urlencode(params), ""))

    def backfill_url(self) -> str:
        path = f"timelines/tag/{quote(self.tag)}" if self.timeline == "hashtag" else "timelines/public"
        params = {"min_id": self.cursor or "", "limit": "40"}
        if self.timeline == "local":
            params["local"] = "true"
        return f"{self.base_url}/api/v1/{path}?{urlencode(params)}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # Streams ----------------------------------------------------------------------------------------

    def _accept(self, status: dict[str, Any]) -> Post | None:
        status_id = str(status.get("id") or "")
        if not status_id or self._ids.seen(status_id):
            return None
        try:
            post = post_from_status(status)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.debug("mastodon: skipping malformed status %.200r", status)
            return None
        if self.cursor is None or _id_after(status_id, self.cursor):
            self.cursor = status_id
        return post

    async def _session(self) -> AsyncIterator[Post]:
        timeout = httpx.Timeout(30.0, read=self.read_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as client:
            if self.cursor:
                async for post in self._backfill(client):
                    yield post
            stream = self._websocket() if self.transport == "websocket" else self._sse(client)
            async for status in stream:
                accepted = self._accept(status)
                if accepted is not None:
                    yield accepted

    async def _backfill(self, client: httpx.AsyncClient) -> AsyncIterator[Post]:
        response = await client.get(self.backfill_url())
        check_status(response, self.name)
        statuses = response.json()
        for status in sorted(statuses, key=lambda s: _id_key(str(s.get("id", "")))):
            post = self._accept(status)
            if post is not None:
                yield post

    async def _sse(self, client: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
        async with client.stream("GET", self.sse_url(), headers={"Accept": "text/event-stream"}) as response:
            check_status(response, self.name)
            event, data = "", []
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    continue  # heartbeat
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line:
                    if event == "update" and data:
                        status = _json_object("\n".join(data))
                        if status is not None:
                            yield status
                    event, data = "", []

    async def _websocket(self) -> AsyncIterator[dict[str, Any]]:
        async with websockets.connect(self.websocket_url(), max_size=2**22, open_timeout=30) as ws:
            async for message in ws:
                envelope = _json_object(message)
                if envelope is None or envelope.get("event") != "update":
                    continue
                payload = envelope.get("payload")
                status = _json_object(payload) if isinstance(payload, str | bytes) else payload
                if isinstance(status, dict):
                    yield status


def _json_object(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        log.debug("mastodon: skipping malformed JSON %.200r", raw)
        return None
    return value if isinstance(value, dict) else None


def _id_key(status_id: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings (snowflakes); compare them as numbers."""
    return (len(status_id), status_id)


def _id_after(a: str, b: str) -> bool:
    return _id_key(a) > _id_key(b)
