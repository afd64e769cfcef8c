"""The PyFlink trend job in a local mini-cluster agrees with the embedded engine and writes Redis.

One job run for the module (the mini-cluster takes 10-20 s to start): a generated file with a burst, an
always-popular tag, mixed spellings and time formats, out-of-order posts, a blocked tag, malformed lines
and hostile hashtags; small windows (W = 120 s, S = 10 s) keep it fast while still sliding 24 slices.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from freshrank.config import Settings, TrendSettings
from freshrank.trends.base import Trend
from freshrank.trends.engine import TrendEngine
from freshrank.trends.flink.launcher import run_trend_job
from freshrank.trends.flink.spec import FlinkJobResult
from freshrank.trends.sources.replay import replay_lines
from freshrank.trends.stores.redis import RedisTrendStore

pytestmark = [pytest.mark.flink, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_TRENDS = TrendSettings(
    window_seconds=120,
    slide_seconds=10,
    allowed_lateness_seconds=60,
    top_n=10,
    min_count=3,
    min_authors=2,
    block_list=["#Spam"],
    ttl_seconds=600,
    min_z=-2.0,  # several tags rank, two steady ones fall below the threshold (the filter is exercised)
    posts_per_author=2,  # the burst's 75 posts by 35 authors count as 70 (the per-author cap is exercised)
)
START = datetime(2026, 12, 24, 8, 0, tzinfo=UTC)
BURST = "SharkWeek"


def _time(moment: datetime, style: int) -> object:
    """The same instant in the formats a replay accepts."""
    ms = round(moment.timestamp() * 1000)
    if style == 0:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if style == 1:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")  # naive = UTC
    if style == 2:
        return (moment + timedelta(hours=2)).replace(tzinfo=None).isoformat() + "+02:00"
    if style == 3:
        return ms  # epoch ms
    return ms / 1000  # epoch seconds (a float)


def generate_posts(seconds: int = 900, seed: int = 3) -> Iterator[str]:
    """JSONL lines: background tags, #love all along, #SharkWeek bursting in the last 100 seconds."""
    rng = random.Random(seed)
    events: list[tuple[datetime, str, str | None]] = []

    def at(second: float) -> datetime:
        return START + timedelta(seconds=second + rng.random())

    def someone() -> str:
        return f"user{rng.randrange(40)}"

    for i in range(seconds):  # one background post a second, a few topics, some Unicode and mixed case
        tags = rng.sample(["#topic1", "#Topic2", "#café", "#日本", "#news", "#Spam", "#SPAM", "#rare"], 2)
        events.append((at(i), " ".join(tags), someone()))
    for i in range(0, seconds, 6):
        events.append((at(i), "always here #love", someone()))
    for i in range(seconds - 100, seconds):
        if rng.random() < 0.8:
            spelling = "#SharkWeek" if rng.random() < 0.7 else "#sharkweek"
            events.append((at(i), f"sharks! {spelling} {spelling}", someone()))
    for i in range(30, seconds, 97):  # a single author posting a tag many times does not make it trend
        for j in range(4):
            events.append((START + timedelta(seconds=i + j), "#solo", "loner"))
    events.append((START + timedelta(seconds=300), "#" + "x" * 10_000, "user1"))  # too long: not a tag
    events.append((at(301), "#'; DROP TABLE posts; -- and https://x.org/#frag", "user2"))
    # Arrival order: event time plus up to 20 s of delay (within the 60 s allowed lateness).
    arrivals = sorted(events, key=lambda e: e[0] + timedelta(seconds=rng.random() * 20))
    for n, (moment, text, user) in enumerate(arrivals):
        yield json.dumps({"text": text, "created_at": _time(moment, n % 5), "user": user}, ensure_ascii=False)
        if n == 200:
            yield "{not json"
            yield json.dumps({"text": "no time #topic1"})
            yield json.dumps({"text": "bad time #topic1", "created_at": "yesterday"})
    last = START + timedelta(seconds=seconds + 5)  # the stream ends on a post without tags
    yield json.dumps({"text": "the end", "created_at": _time(last, 0), "user": "user3"})


@pytest.fixture(scope="module")
def posts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flink") / "posts.jsonl"
    path.write_text("\n".join(generate_posts()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    url = f"{REDIS_URL}?prefix=freshrank-test-flink-{uuid.uuid4().hex[:12]}"
    store = RedisTrendStore(url)
    store._redis.ping()  # a missing redis-server fails the tests, it does not skip them
    yield url
    store.clear()
    store.close()


@pytest.fixture(scope="module")
def flink_run(posts_file: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> FlinkJobResult:
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"), trends=TEST_TRENDS)
    return run_trend_job(posts_file, redis_url, settings, bounded=True)


def embedded_top(path: Path, trends: TrendSettings) -> list[Trend]:
    engine = TrendEngine(trends)
    with path.open(encoding="utf-8") as fh:
        replay_lines(engine, fh)
    engine.finish()
    return engine.top()


def assert_same_trends(flink: list[Trend], embedded: list[Trend]) -> None:
    assert [t.hashtag for t in flink] == [t.hashtag for t in embedded]
    for f, e in zip(flink, embedded, strict=True):
        assert f.label == e.label
        assert f.count == e.count, f.hashtag
        assert f.baseline == e.baseline, f.hashtag
        assert f.score == pytest.approx(e.score, abs=1e-6), f.hashtag
        assert f.expected == pytest.approx(e.expected, abs=1e-6), f.hashtag  # JSON keeps 6 decimals
        assert f.evidence == e.evidence, f.hashtag
        assert f.authors == e.authors, f.hashtag


def test_flink_job_agrees_with_the_embedded_engine(flink_run: FlinkJobResult, posts_file: Path) -> None:
    embedded = embedded_top(posts_file, TEST_TRENDS)
    flink = flink_run.to_trends()
    assert len(embedded) >= 5, "the scenario should rank several tags"
    assert embedded[0].hashtag == f"#{BURST}"
    assert embedded[0].evidence == 70 < embedded[0].count  # capped: 2 posts per author
    assert {"#rare", "#topic1"}.isdisjoint(t.hashtag for t in embedded)  # z below min_z
    assert_same_trends(flink, embedded)


def test_flink_job_ranks_the_burst_first_and_applies_the_rules(flink_run: FlinkJobResult) -> None:
    trends = flink_run.to_trends()
    tags = [t.hashtag.casefold() for t in trends]
    assert trends[0].hashtag == "#SharkWeek"  # the most common spelling wins over #sharkweek
    assert trends[0].label == "shark week"
    assert tags.index("#love") > 0
    assert "#spam" not in tags  # block list, case-folded
    assert "#solo" not in tags  # one author only
    assert all(len(t.hashtag) < 200 and "drop" not in t.hashtag.casefold() for t in trends)
    assert flink_run.posts > 1000
    end = datetime.fromtimestamp(flink_run.window_end_ms / 1000, tz=UTC)  # type: ignore[operator]
    assert end == START + timedelta(seconds=910)  # first tick at or after the last post (t = 905 s)


def test_flink_job_writes_the_snapshot_to_redis(flink_run: FlinkJobResult, redis_url: str) -> None:
    store = RedisTrendStore(redis_url)
    try:
        assert store.top() == flink_run.to_trends()
        client = redis.Redis.from_url(REDIS_URL)
        for key in store.keys:
            assert 0 < client.ttl(key) <= TEST_TRENDS.ttl_seconds
        client.close()
    finally:
        store.close()


def test_the_deployed_shape_writes_redis_from_the_job(posts_file: Path, tmp_path: Path) -> None:
    """``store_in_job`` (the FlinkDeployment's spec): the job's own sink writes the snapshot, no launcher."""
    url = f"{REDIS_URL}?prefix=freshrank-test-flink-{uuid.uuid4().hex[:12]}"
    settings = Settings(state_dir=tmp_path, trends=TEST_TRENDS)
    result = run_trend_job(posts_file, url, settings, bounded=True, parallelism=2, store_in_job=True)
    store = RedisTrendStore(url)
    try:
        assert result.snapshots == 0  # the launcher wrote nothing
        assert store.top() == result.to_trends() and store.top()[0].hashtag == f"#{BURST}"
    finally:
        store.clear()
        store.close()
