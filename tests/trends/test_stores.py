"""Both trend stores: atomic snapshot replacement, ranking, history, TTL, hostile tags."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from freshrank.trends import Trend, TrendStore, open_trend_store
from freshrank.trends.stores.redis import RedisTrendStore
from freshrank.trends.stores.sqlite import SQLiteTrendStore

pytestmark = pytest.mark.redis


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trends.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


def trend(tag: str, score: float, count: int = 10, history: tuple[int, ...] = ()) -> Trend:
    return Trend(
        f"#{tag}", tag.lower(), score, count, 1.0, authors=3, history=history, expected=2.5, evidence=count
    )


def test_replace_and_top_best_first(store_url: str) -> None:
    store = open_trend_store(store_url)
    store.replace([trend("b", 1.0), trend("A", 5.0, history=(1, 2, 3)), trend("c", 1.0, count=20)])
    assert [t.hashtag for t in store.top()] == ["#A", "#c", "#b"]
    assert store.top(1) == [trend("A", 5.0, history=(1, 2, 3))]
    assert store.top(0) == []
    store.replace([trend("new", 2.0)])
    assert [t.hashtag for t in store.top()] == ["#new"]
    store.close()


def test_a_reader_sees_each_new_snapshot_from_another_writer(store_url: str) -> None:
    """Readers may keep a decoded snapshot (SQLite does, per written_at stamp), never past a replace."""
    reader, writer = open_trend_store(store_url), open_trend_store(store_url)
    for round_ in range(3):
        writer.replace([trend(f"t{round_}", 1.0), trend("shared", 2.0 + round_)])
        assert [t.hashtag for t in reader.top()] == ["#shared", f"#t{round_}"]
        assert reader.top(1)[0].score == 2.0 + round_
    writer.clear()
    assert reader.top() == []
    reader.close()
    writer.close()


def test_a_reader_decodes_each_snapshot_once(store_url: str) -> None:
    """The API reads the trends on every search: while nothing was written, the same decoded trends come
    back; a replace (even with equal trends, from another writer) is a new snapshot, decoded again."""
    reader, writer = open_trend_store(store_url), open_trend_store(store_url)
    writer.replace([trend("a", 2.0), trend("b", 1.0)])
    first = reader.top()
    again = reader.top()
    assert again == first and all(x is y for x, y in zip(again, first, strict=True))
    assert reader.top(1)[0] is first[0]
    writer.replace([trend("a", 2.0), trend("b", 1.0)])
    renewed = reader.top()
    assert renewed == first and renewed[0] is not first[0]
    reader.close()
    writer.close()


def test_history_of_a_hashtag(store_url: str) -> None:
    store = open_trend_store(store_url)
    store.replace([trend("SharkWeek", 3.0, history=(0, 1, 5, 9))])
    assert store.history("#sharkweek") == [0, 1, 5, 9]
    assert store.history("SharkWeek", 2) == [5, 9]
    assert store.history("#absent") == []
    store.close()


def test_stale_snapshot_reads_empty(store_url: str) -> None:
    store = open_trend_store(store_url, ttl_seconds=1)
    store.replace([trend("a", 1.0)])
    assert store.top()
    time.sleep(2.1)
    assert store.top() == []
    assert store.history("a") == []
    store.close()


def test_ttl_from_url(tmp_path: Path) -> None:
    store = open_trend_store(f"sqlite:///{tmp_path / 't.db'}?ttl=5")
    assert isinstance(store, SQLiteTrendStore) and store.ttl_seconds == 5


def test_hostile_hashtags_round_trip(store_url: str) -> None:
    store = open_trend_store(store_url)
    hostile = [trend("'; DROP TABLE trend_snapshot; --", 3.0), trend("x" * 10_000, 2.0), trend("日本", 1.0)]
    store.replace(hostile)
    assert store.top() == hostile
    store.close()


def test_empty_snapshot_and_clear(store_url: str) -> None:
    store = open_trend_store(store_url)
    store.replace([trend("a", 1.0)])
    store.replace([])
    assert store.top() == []
    store.replace([trend("a", 1.0)])
    store.clear()
    assert store.top() == []
    store.close()


def test_readers_never_see_half_a_snapshot(store_url: str) -> None:
    writer: TrendStore = open_trend_store(store_url)
    reader: TrendStore = open_trend_store(store_url)
    snapshots = [[trend(f"s{i}t{j}", float(20 - j)) for j in range(20)] for i in range(2)]
    writer.replace(snapshots[0])
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            writer.replace(snapshots[i % 2])

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(200):
            seen = {t.hashtag[2] for t in reader.top()}
            assert len(seen) == 1, f"mixed snapshot {seen}"
    finally:
        stop.set()
        thread.join()
    writer.close()
    reader.close()


def test_redis_layout_and_expiry(redis_url: str) -> None:
    store = open_trend_store(redis_url, ttl_seconds=100)
    assert isinstance(store, RedisTrendStore)
    store.replace([trend("SharkWeek", 4.5)])
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    assert client.zrange(store.top_key, 0, -1, withscores=True) == [("sharkweek", 4.5)]
    assert '"hashtag": "#SharkWeek"' in client.hget(store.details_key, "sharkweek")
    assert all(0 < client.ttl(key) <= 100 for key in store.keys)
    client.close()
    store.close()


def test_redis_down_is_a_clear_error() -> None:
    store = open_trend_store("redis://127.0.0.1:1/0")
    with pytest.raises(redis.ConnectionError):
        store.top()


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unsupported trend store"):
        open_trend_store("mongodb://x")
