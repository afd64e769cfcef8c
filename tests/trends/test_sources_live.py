"""Live sources against local servers speaking each service's documented format, with disconnect + resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve

from freshrank.trends.engine import Post
from freshrank.trends.sources.bluesky import BlueskySource
from freshrank.trends.sources.live import Backoff, ReconnectingSource, SourceError
from freshrank.trends.sources.mastodon import MastodonSource, html_to_text
from freshrank.trends.sources.x import XSource

FAST = Backoff(initial=0.01, maximum=0.05)


async def take(source: ReconnectingSource, n: int, timeout: float = 20.0) -> list[Post]:
    posts: list[Post] = []

    async def collect() -> None:
        async for post in source.posts():
            posts.append(post)
            if len(posts) >= n:
                return

    await asyncio.wait_for(collect(), timeout)
    return posts


# ---- a tiny HTTP/1.1 server: one handler per connection, in order --------------------------------------


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class HttpServer:
    handlers: list[Handler]
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        target = lines[0].split(" ")[1]
        pairs = (line.partition(":") for line in lines[1:] if line)
        headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
        parts = urlsplit(target)
        request = Request(parts.path, parse_qs(parts.query), headers)
        self.requests.append(request)
        handler = self.handlers[min(len(self.requests), len(self.handlers)) - 1]
        try:
            await handler(request, writer)
        finally:
            writer.close()

    async def __aenter__(self) -> HttpServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def respond(
    writer: asyncio.StreamWriter, status: str, content_type: str, chunks: list[str], pause: float = 0.0
) -> None:
    """Headers with Connection: close, then the body piece by piece (a stream that ends = a disconnect)."""
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n".encode())
    for chunk in chunks:
        writer.write(chunk.encode())
        await writer.drain()
        await asyncio.sleep(pause)


# ---- Bluesky Jetstream ---------------------------------------------------------------------------------


def jetstream_event(
    time_us: int,
    text: str,
    tags: list[str],
    collection: str = "app.bsky.feed.post",
    operation: str = "create",
) -> str:
    facets = [
        {
            "index": {"byteStart": 0, "byteEnd": 1},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
        }
        for tag in tags
    ]
    facets.append(
        {
            "index": {"byteStart": 0, "byteEnd": 1},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x.org/#frag"}],
        }
    )
    record = {
        "$type": collection,
        "text": text,
        "createdAt": "2030-01-01T00:00:00Z",
        "langs": ["en"],
        "facets": facets,
    }
    return json.dumps(
        {
            "did": f"did:plc:user{time_us % 7}",
            "time_us": time_us,
            "kind": "commit",
            "commit": {
                "rev": "r",
                "operation": operation,
                "collection": collection,
                "rkey": "k",
                "record": record,
                "cid": "c",
            },
        }
    )


def test_bluesky_facets_disconnect_and_cursor_resume() -> None:
    connections: list[dict[str, list[str]]] = []

    async def handler(ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)  # type: ignore[union-attr]
        connections.append(query)
        if len(connections) == 1:
            await ws.send(jetstream_event(1_000, "Tree time #Christmas", ["Christmas"]))
            await ws.send(jetstream_event(2_000, "a like", [], collection="app.bsky.feed.like"))
            await ws.send("{not json")
            await ws.send(jetstream_event(3_000, "no facet here #ignored", []))
            await ws.close(code=1011)  # the relay drops us
            return
        await ws.send(jetstream_event(3_000, "replayed: already seen", ["dup"]))
        await ws.send(jetstream_event(4_000, "#SharkWeek begins", ["SharkWeek", "sharks"]))
        await ws.send(jetstream_event(5_000, "deleted", ["gone"], operation="delete"))
        await ws.send(jetstream_event(6_000, "last", ["end"]))
        await asyncio.sleep(1)

    async def scenario() -> tuple[list[Post], BlueskySource]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            source = BlueskySource(url=f"ws://127.0.0.1:{port}/subscribe", backoff=FAST)
            return await take(source, 4), source

    posts, source = asyncio.run(scenario())
    assert [p.hashtags for p in posts] == [["Christmas"], [], ["SharkWeek", "sharks"], ["end"]]
    assert posts[0].created_at == pytest.approx(0.001) and posts[0].user == "did:plc:user6"
    assert connections[0]["wantedCollections"] == ["app.bsky.feed.post"]
    assert "cursor" not in connections[0]
    assert connections[1]["cursor"] == ["3000"]
    assert source.reconnects == 1 and source.cursor == "6000"


def test_bluesky_gives_up_after_max_reconnects() -> None:
    async def scenario() -> list[Post]:
        source = BlueskySource(url="ws://127.0.0.1:1/subscribe", backoff=FAST, max_reconnects=2)
        return [post async for post in source.posts()]

    assert asyncio.run(scenario()) == []


# ---- Mastodon ------------------------------------------------------------------------------------------


def status(status_id: int, html: str, tags: list[str], acct: str = "alice") -> dict[str, object]:
    return {
        "id": str(status_id),
        "created_at": "2026-12-24T08:00:00.000Z",
        "content": html,
        "account": {"id": "1", "acct": acct},
        "tags": [{"name": t, "url": "u"} for t in tags],
        "reblog": None,
    }


def sse(*statuses: dict[str, object]) -> list[str]:
    chunks = [":)\n\n"]
    for s in statuses:
        chunks.append(f"event: update\ndata: {json.dumps(s)}\n\n")
        chunks.append("event: delete\ndata: 99\n\n:thump\n\n")
    return chunks


def test_html_to_text() -> None:
    html = (
        '<p>Snow! <a href="https://m.social/tags/christmas" class="mention hashtag">#<span>christmas'
        "</span></a> &amp; more<br>next</p><p>para</p>"
    )
    assert html_to_text(html) == "Snow! #christmas & more\nnext\npara"


def test_mastodon_sse_disconnect_and_backfill_resume() -> None:
    async def first(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(
            writer,
            "200 OK",
            "text/event-stream",
            sse(status(10, "<p>hello #Christmas</p>", ["christmas"]), status(11, "<p>#a</p>", ["a"])),
        )

    async def backfill(request: Request, writer: asyncio.StreamWriter) -> None:
        missed = [
            status(13, "<p>#missed2</p>", ["missed2"]),
            status(12, "<p>#missed1</p>", ["missed1"]),
            status(11, "<p>#a</p>", ["a"]),
        ]
        await respond(writer, "200 OK", "application/json", [json.dumps(missed)])

    async def second(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(
            writer,
            "200 OK",
            "text/event-stream",
            sse(
                status(13, "<p>#missed2</p>", ["missed2"]), status(14, "<p>no tags field: #FromText</p>", [])
            ),
            pause=0.01,
        )
        await asyncio.sleep(1)

    async def scenario() -> tuple[list[Post], HttpServer, MastodonSource]:
        async with HttpServer([first, backfill, second]) as server:
            source = MastodonSource(server.url, token="secret", backoff=FAST)
            return await take(source, 5), server, source

    posts, server, source = asyncio.run(scenario())
    assert [p.hashtags for p in posts] == [["christmas"], ["a"], ["missed1"], ["missed2"], ["FromText"]]
    assert posts[0].text == "hello #Christmas" and posts[0].user == "alice"
    paths = [r.path for r in server.requests]
    assert paths == ["/api/v1/streaming/public", "/api/v1/timelines/public", "/api/v1/streaming/public"]
    assert server.requests[1].query["min_id"] == ["11"]
    assert all(r.headers["authorization"] == "Bearer secret" for r in server.requests)
    assert source.cursor == "14"


def test_mastodon_hashtag_timeline_over_websocket() -> None:
    seen: list[dict[str, list[str]]] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(parse_qs(urlsplit(ws.request.path).query))  # type: ignore[union-attr]
        await ws.send(
            json.dumps(
                {
                    "stream": ["hashtag", "sharkweek"],
                    "event": "update",
                    "payload": json.dumps(status(1, "<p>#SharkWeek!</p>", ["sharkweek"])),
                }
            )
        )
        await ws.send(json.dumps({"stream": ["hashtag"], "event": "delete", "payload": "1"}))
        again = json.dumps(status(2, "<p>#SharkWeek again</p>", ["sharkweek"]))
        await ws.send(json.dumps({"stream": ["hashtag"], "event": "update", "payload": again}))
        await asyncio.sleep(1)

    async def scenario() -> list[Post]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            source = MastodonSource(
                f"http://127.0.0.1:{port}",
                timeline="hashtag",
                tag="#sharkweek",
                token="tok",
                transport="websocket",
                backoff=FAST,
            )
            return await take(source, 2)

    posts = asyncio.run(scenario())
    assert [p.hashtags for p in posts] == [["sharkweek"], ["sharkweek"]]
    assert seen[0] == {"stream": ["hashtag"], "tag": ["sharkweek"], "access_token": ["tok"]}


def test_mastodon_bad_token_is_fatal() -> None:
    async def unauthorized(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, "401 Unauthorized", "application/json", ['{"error": "invalid token"}'])

    async def scenario() -> None:
        async with HttpServer([unauthorized]) as server:
            await take(MastodonSource(server.url, token="bad", backoff=FAST), 1)

    with pytest.raises(SourceError, match="401"):
        asyncio.run(scenario())


# ---- X filtered stream ---------------------------------------------------------------------------------


def tweet_line(tweet_id: int, text: str, tags: list[str]) -> str:
    data = {
        "id": str(tweet_id),
        "text": text,
        "created_at": "2026-12-24T08:00:00.000Z",
        "author_id": "42",
        "entities": {"hashtags": [{"start": 0, "end": len(t) + 1, "tag": t} for t in tags]},
    }
    return json.dumps({"data": data, "matching_rules": [{"id": "1", "tag": "all"}]}) + "\r\n"


def test_x_rate_limit_backoff_operational_disconnect_and_backfill() -> None:
    async def limited(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, "429 Too Many Requests", "application/json", ['{"title": "Too Many Requests"}'])

    async def first(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(
            writer,
            "200 OK",
            "application/json",
            [
                "\r\n",
                tweet_line(1, "#Christmas tree", ["Christmas"]),
                "\r\n",
                "not json\r\n",
                json.dumps({"errors": [{"title": "operational-disconnect"}]}) + "\r\n",
            ],
        )

    async def resumed(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(
            writer,
            "200 OK",
            "application/json",
            [tweet_line(1, "#Christmas tree", ["Christmas"]), tweet_line(2, "no entities #Text", [])],
        )
        await asyncio.sleep(1)

    async def scenario() -> tuple[list[Post], HttpServer, XSource]:
        async with HttpServer([limited, first, resumed]) as server:
            source = XSource(
                "bearer-x",
                url=f"{server.url}/2/tweets/search/stream",
                backfill_minutes=2,
                backoff=FAST,
                rate_limit_wait=0.2,
            )
            loop = asyncio.get_running_loop()
            start = loop.time()
            posts = await take(source, 2)
            assert loop.time() - start >= 0.2  # waited out the 429
            return posts, server, source

    posts, server, source = asyncio.run(scenario())
    assert [(p.hashtags, p.user) for p in posts] == [(["Christmas"], "42"), (["Text"], "42")]
    assert all(r.headers["authorization"] == "Bearer bearer-x" for r in server.requests)
    assert server.requests[0].query["tweet.fields"] == ["created_at,author_id,entities"]
    assert "backfill_minutes" not in server.requests[1].query
    assert server.requests[2].query["backfill_minutes"] == ["2"]
    assert source.reconnects == 2


def test_x_needs_a_token() -> None:
    with pytest.raises(SourceError, match="bearer token"):
        XSource("")
