"""``freshrank trends …`` through the real CLI app, including the acceptance scenario."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from freshrank.cli import EXIT_UNAVAILABLE, EXIT_USAGE, app
from freshrank.trends.simulate import Scenario, load_texts, write_jsonl

T0_MS = 1_800_000_000_000


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "FRESHRANK_STATE_DIR": str(tmp_path / "state"),
        "FRESHRANK_TRENDS__MIN_AUTHORS": "1",
        "FRESHRANK_TRENDS__MIN_Z": "-1e9",  # the CLI tests look at every counted tag, not only bursts
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FRESHRANK_TREND_STORE_URL", raising=False)
    return values


def small_file(path: Path) -> Path:
    rows = [{"text": "#burst now", "created_at": T0_MS + 1000 * i} for i in range(10)]
    rows += [{"text": "#steady", "created_at": T0_MS + 1000 * i} for i in range(0, 3600, 60)]
    rows.sort(key=lambda r: r["created_at"])  # type: ignore[arg-type, return-value]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    return path


def test_replay_json_then_top_from_the_store(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    path = str(small_file(tmp_path / "p.jsonl"))
    result = runner.invoke(app, ["trends", "replay", "--input", path, "--json"])
    assert result.exit_code == 0, result.output
    trends = json.loads(result.stdout)
    assert [t["hashtag"] for t in trends] == ["#steady"]  # #burst is outside the final window
    assert set(trends[0]) >= {"hashtag", "label", "score", "count", "baseline"}
    assert "line 71" in result.stderr
    top = runner.invoke(app, ["trends", "top", "--json"])
    assert top.exit_code == 0
    assert json.loads(top.stdout) == trends


def test_replay_into_redis(tmp_path: Path, env: dict[str, str], redis_url: str) -> None:
    runner = CliRunner()
    path = str(small_file(tmp_path / "p.jsonl"))
    result = runner.invoke(app, ["trends", "replay", "-i", path, "--json", "--store", redis_url])
    assert result.exit_code == 0, result.output
    top = runner.invoke(app, ["trends", "top", "--json", "--store", redis_url])
    assert json.loads(top.stdout) == json.loads(result.stdout)


def test_missing_input_and_unreachable_store(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["trends", "replay", "--input", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == EXIT_USAGE
    down = runner.invoke(app, ["trends", "top", "--store", "redis://127.0.0.1:1/0"])
    assert down.exit_code == EXIT_UNAVAILABLE
    assert "unavailable" in down.stderr


def test_label_command() -> None:
    result = CliRunner().invoke(app, ["trends", "label", "#SharkWeek", "#WWII", "--json"])
    assert json.loads(result.stdout) == {"#SharkWeek": "shark week", "#WWII": "WWII"}


def test_top_of_an_empty_store(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["trends", "top", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_acceptance_burst_first_always_popular_below(tmp_path: Path, shared_data: Path) -> None:
    """Steady background from the shared tweets + always-popular #love + #christmas bursting at 1 h 50."""
    texts = load_texts(shared_data / "tweets" / "tweeteval_hashtag_tweets.jsonl.gz", limit=20_000)
    scenario = Scenario(
        background_rate=1.5,
        popular_tag="love",
        popular_rate=0.5,
        burst_tag="christmas",
        burst_at_seconds=6600,
        burst_seconds=300,
        burst_rate=0.3,
    )
    path = tmp_path / "scenario.jsonl"
    write_jsonl(scenario.posts(texts), path)
    env = {**os.environ, "FRESHRANK_STATE_DIR": str(tmp_path / "state"), "FRESHRANK_TRENDS__TOP_N": "1000"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "freshrank"), "trends", "replay", "--input", str(path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    trends = json.loads(done.stdout)  # exactly one JSON document on stdout
    tags = [t["hashtag"] for t in trends]
    assert tags[0] == "#christmas"
    assert "#love" not in tags  # more posts than the burst, yet it does not trend: it is always popular
    burst = trends[0]
    assert burst["count"] > burst["expected"] and burst["p_value"] < 1e-6


def _jetstream_server(events: list[str], seen: list[str]) -> tuple[str, Callable[[], None]]:
    """A Jetstream-speaking WebSocket server in a background thread; returns its URL and a stop function."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.request.path)  # type: ignore[union-attr]
        for event in events:
            await ws.send(event)
        await asyncio.sleep(2)

    async def start() -> None:
        holder["server"] = await serve(handler, "127.0.0.1", 0)
        holder["port"] = holder["server"].sockets[0].getsockname()[1]
        ready.set()

    def run() -> None:
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    def stop() -> None:
        async def close() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return f"ws://127.0.0.1:{holder['port']}/subscribe", stop


def test_stream_bluesky_writes_the_store_and_saves_the_cursor(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRESHRANK_TRENDS__ALLOWED_LATENESS_SECONDS", "0")
    base_us = T0_MS * 1000
    events = [
        json.dumps(
            {
                "did": f"did:plc:{i % 3}",
                "time_us": base_us + i * 1_000_000,
                "kind": "commit",
                "commit": {
                    "operation": "create",
                    "collection": "app.bsky.feed.post",
                    "rkey": "k",
                    "record": {
                        "text": "#SharkWeek",
                        "facets": [
                            {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "SharkWeek"}]}
                        ],
                    },
                },
            }
        )
        for i in range(12)
    ]
    seen: list[str] = []
    url, stop = _jetstream_server(events, seen)
    try:
        runner = CliRunner()
        args = ["trends", "stream", "--source", "bluesky", "--url", url, "--max-posts", "12", "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        trends = json.loads(result.stdout)
        # posts at T0+0 s … T0+11 s; the window ends at the tick T0+10 s, so 11 of them count
        assert [(t["hashtag"], t["count"], t["authors"]) for t in trends] == [("#SharkWeek", 11, 3)]
        top = runner.invoke(app, ["trends", "top", "--json"])
        assert json.loads(top.stdout) == trends
        cursor = Path(env["FRESHRANK_STATE_DIR"]) / "trends-bluesky.cursor"
        assert cursor.read_text() == str(base_us + 11_000_000)
        again = runner.invoke(app, args[:-3] + ["--max-posts", "1", "--seconds", "3"])
        assert again.exit_code == 0, again.output
        assert f"cursor={base_us + 11_000_000}" in seen[-1]
    finally:
        stop()


def test_stream_from_stdin(env: dict[str, str]) -> None:
    lines = "".join(
        json.dumps({"text": "#Live now", "created_at": T0_MS + i * 1000, "user": f"u{i}"}) + "\n"
        for i in range(8)
    )
    args = ["trends", "stream", "--source", "stdin", "--json"]
    result = CliRunner().invoke(app, args, input=lines + "oops\n")
    assert result.exit_code == 0, result.output
    (trend,) = json.loads(result.stdout)
    assert (trend["hashtag"], trend["count"], trend["authors"]) == ("#Live", 8, 8)
    assert "line 9" in result.stderr


def test_stream_rejects_unknown_sources_and_missing_tokens(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRESHRANK_X_BEARER_TOKEN", raising=False)
    monkeypatch.delenv("FRESHRANK_TRENDS_TOKEN", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["trends", "stream", "--source", "myspace"]).exit_code == EXIT_USAGE
    missing = runner.invoke(app, ["trends", "stream", "--source", "x"])
    assert missing.exit_code == EXIT_USAGE and "bearer token" in missing.stderr
