"""Bluesky Jetstream consumer: posts as JSON over a WebSocket, hashtags from the post's facets.

Jetstream (https://github.com/bluesky-social/jetstream) sends one JSON event per message; a new post is
``{"did", "time_us", "kind": "commit", "commit": {"operation": "create", "collection":
"app.bsky.feed.post", "rkey", "record": {"text", "createdAt", "facets": [{"features": [{"$type":
"app.bsky.richtext.facet#tag", "tag": "..."}]}], "tags": [...]}}}``. The event time is ``time_us`` (the
relay's clock; ``createdAt`` is set by clients and may be anything). The resume cursor is the last
``time_us``: a reconnect asks for ``?cursor=<time_us>`` and drops the events it already saw.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import websockets

from freshrank.trends.engine import Post
from freshrank.trends.sources.live import Backoff, ReconnectingSource, log

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
POST_COLLECTION = "app.bsky.feed.post"
TAG_FEATURE = "app.bsky.richtext.facet#tag"


def post_from_event(event: dict[str, Any]) -> Post | None:
    """A Post for a 'create app.bsky.feed.post' commit, else None."""
    commit = event.get("commit") or {}
    if event.get("kind") != "commit" or commit.get("operation") != "create":
        return None
    if commit.get("collection") != POST_COLLECTION:
        return None
    record = commit.get("record") or {}
    tags = [
        str(feature["tag"])
        for facet in record.get("facets") or ()
        for feature in facet.get("features") or ()
        if feature.get("$type") == TAG_FEATURE and feature.get("tag")
    ]
    tags += [str(tag) for tag in record.get("tags") or () if tag]
    return Post(
        text=str(record.get("text") or ""),
        created_at=int(event["time_us"]) / 1_000_000,
        user=str(event.get("did") or "") or None,
        hashtags=list(dict.fromkeys(tags)),
    )


class BlueskySource(ReconnectingSource):
    name = "bluesky"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        cursor: str | None = None,
        backoff: Backoff | None = None,
        max_reconnects: int | None = None,
    ) -> None:
        super().__init__(backoff, max_reconnects)
        self.url = url
        self.cursor = cursor

    def connect_url(self) -> str:
        params = [("wantedCollections", POST_COLLECTION)]
        if self.cursor:
            params.append(("cursor", self.cursor))
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(params)}"

    async def _session(self) -> AsyncIterator[Post]:
        last = int(self.cursor) if self.cursor else 0
        async with websockets.connect(self.connect_url(), max_size=2**22, open_timeout=30) as ws:
            async for message in ws:
                try:
                    event = json.loads(message)
                    time_us = int(event["time_us"])
                except (ValueError, KeyError, TypeError):
                    log.debug("bluesky: skipping malformed message %.200r", message)
                    continue
                if time_us <= last:
                    continue  # replayed by the resume cursor
                last = time_us
                self.cursor = str(time_us)
                try:
                    post = post_from_event(event)
                except (ValueError, KeyError, TypeError, AttributeError):
                    log.debug("bluesky: skipping malformed event %.200r", message)
                    continue
                if post is not None:
                    yield post
