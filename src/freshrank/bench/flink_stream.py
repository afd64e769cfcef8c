"""Streaming end to end on the real servers: a producer writes posts to Kafka at a steady rate (created now,
so event time is wall time) with a burst injected; the Flink job (parallelism 2, checkpoints every 10 s)
reads the topic live and writes each window's top N to Redis.

Measured: the delay from the burst's first post to its tag in Redis's top N (target: at most 15 s with a
10 s slide; the window fires at its end plus the allowed lateness, 2 s here), the job's output lag (the wall
time at which a window arrives minus its end: a job that falls behind shows it growing), the posts the job
counted against those produced, the consumer lag (the group's committed offsets against the topic's end,
every 5 s; Flink commits at each checkpoint, so up to one interval of posts is always "behind") and the
rate the producer sustained. ``make bench`` runs 5 minutes at
1,000 posts/s (``FRESHRANK_BENCH_STREAM_SECONDS`` changes it); ``tests/trends/test_flink_stream.py`` a
short run.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer

from freshrank.config import Settings, TrendSettings
from freshrank.console import err
from freshrank.trends.flink.launcher import run_trend_job
from freshrank.trends.flink.spec import Checkpoints, KafkaTopic
from freshrank.trends.kafka import DEFAULT_BOOTSTRAP, delete_topic, ensure_topic, produce
from freshrank.trends.stores.redis import RedisTrendStore

REDIS_URL = "redis://127.0.0.1:6379/0"
BURST = "FreshBurst"
BACKGROUND_TAGS = 300
STEP_S = 0.1


def stream_settings(window_seconds: int = 60) -> TrendSettings:
    """Windows for a live test: W = ``window_seconds``, S = 10 s, 2 s allowed lateness."""
    return TrendSettings(
        window_seconds=window_seconds, slide_seconds=10, allowed_lateness_seconds=2, ttl_seconds=600
    )


@dataclass
class StreamReport:
    """What one streaming run produced, what the job wrote and when."""

    produced: int = 0
    produce_seconds: float = 0.0
    burst_first_post: float | None = None  # wall time (s)
    burst_in_redis: float | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)  # end, posts, arrival lag (s)
    consumer_lag: list[int] = field(default_factory=list)  # messages behind the committed offsets, every 5 s

    @property
    def delay_s(self) -> float | None:
        if self.burst_first_post is None or self.burst_in_redis is None:
            return None
        return self.burst_in_redis - self.burst_first_post

    def lags(self) -> list[float]:
        return [w["lag_s"] for w in self.windows]

    def summary(self) -> dict[str, Any]:
        lags = self.lags()
        third = max(len(lags) // 3, 1)
        return {
            "produced": self.produced,
            "produce_rate": round(self.produced / self.produce_seconds, 1) if self.produce_seconds else None,
            "burst_delay_s": round(self.delay_s, 2) if self.delay_s is not None else None,
            "windows": len(self.windows),
            "counted": sum(w["posts"] for w in self.windows),
            "lag_median_s": round(statistics.median(lags), 2) if lags else None,
            "lag_max_s": round(max(lags), 2) if lags else None,
            "lag_growth_s": round(statistics.mean(lags[-third:]) - statistics.mean(lags[:third]), 2)
            if lags
            else None,
            "consumer_lag_median": statistics.median(self.consumer_lag) if self.consumer_lag else None,
            "consumer_lag_max": max(self.consumer_lag) if self.consumer_lag else None,
        }


def live_posts(
    rate: int, seconds: float, burst_at: float, burst_rate: int, report: StreamReport
) -> Iterator[str]:
    """JSON lines created now, ``rate`` per second (tags Zipf-like over a fixed pool), plus the burst."""
    rng = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(BACKGROUND_TAGS)]
    start = time.time()
    for step in range(int(seconds / STEP_S)):
        delay = start + step * STEP_S - time.time()
        if delay > 0:
            time.sleep(delay)
        now_ms = int(time.time() * 1000)
        for tag in rng.choices(range(BACKGROUND_TAGS), weights, k=int(rate * STEP_S)):
            user = f"u{rng.randrange(20_000)}"
            yield json.dumps({"text": f"news of the day #topic{tag}", "created_at": now_ms, "user": user})
        if step * STEP_S >= burst_at:
            if report.burst_first_post is None:
                report.burst_first_post = now_ms / 1000
            for _ in range(int(burst_rate * STEP_S)):
                user = f"fan{rng.randrange(500)}"
                yield json.dumps({"text": f"look! #{BURST}", "created_at": now_ms, "user": user})


def stream(
    seconds: float, rate: int = 1000, burst_at: float = 0.6, burst_rate: int = 100, window_seconds: int = 60
) -> StreamReport:
    """One live run: topic, job, producer and the Redis watcher; ``burst_at`` is a fraction of ``seconds``."""
    topic = f"freshrank-stream-{uuid.uuid4().hex[:12]}"
    redis_url = f"{REDIS_URL}?prefix=freshrank-stream-{uuid.uuid4().hex[:12]}"
    report, stop = StreamReport(), threading.Event()
    settings = Settings(trends=stream_settings(window_seconds))
    ensure_topic(topic, DEFAULT_BOOTSTRAP, partitions=2)
    store = RedisTrendStore(redis_url)

    def arrived(window: dict[str, Any]) -> None:
        lag = time.time() - window["end"] / 1000
        report.windows.append({"end": window["end"], "posts": window["posts"], "lag_s": round(lag, 3)})

    def job() -> None:
        run_trend_job(
            KafkaTopic(topic=topic, group_id=topic),
            redis_url,
            settings,
            bounded=False,
            parallelism=2,
            checkpoints=Checkpoints(checkpoint_interval_s=10, checkpoint_dir=checkpoints_uri),
            on_window=arrived,
            stop=stop,
        )

    with tempfile.TemporaryDirectory(prefix="freshrank-stream-") as checkpoints_dir:
        checkpoints_uri = f"file://{checkpoints_dir}"
        runner = threading.Thread(target=job, daemon=True)
        runner.start()
        watcher = threading.Thread(target=_watch, args=(store, report, stop), daemon=True)
        watcher.start()
        lagger = threading.Thread(target=_consumer_lag, args=(topic, report, stop), daemon=True)
        lagger.start()
        started = time.monotonic()
        sent = produce(live_posts(rate, seconds, burst_at * seconds, burst_rate, report), topic)
        report.produced, report.produce_seconds = sent.sent, time.monotonic() - started
        deadline = time.monotonic() + 30  # the windows of the last posts: end + lateness + start-up slack
        while report.burst_in_redis is None and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(max(0.0, 15 - (time.monotonic() - started - seconds)))
        stop.set()
        runner.join(60)
        watcher.join(5)
    store.clear()
    store.close()
    delete_topic(topic, DEFAULT_BOOTSTRAP)
    return report


def _consumer_lag(group: str, report: StreamReport, stop: threading.Event) -> None:
    """Every 5 s: messages between the group's committed offsets and the topic's end (Flink commits the
    offsets it has read at each completed checkpoint, so this includes up to one checkpoint interval)."""
    admin = KafkaAdminClient(bootstrap_servers=DEFAULT_BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=DEFAULT_BOOTSTRAP)
    try:
        while not stop.wait(5):
            committed = admin.list_group_offsets({group: None}).get(group, {})
            if committed:
                ends = consumer.end_offsets(list(committed))
                report.consumer_lag.append(sum(ends[tp] - meta.offset for tp, meta in committed.items()))
    finally:
        consumer.close()
        admin.close()


def _watch(store: RedisTrendStore, report: StreamReport, stop: threading.Event) -> None:
    """Poll Redis's top N every 100 ms until the burst's tag is in it."""
    while not stop.is_set():
        if any(t.hashtag == f"#{BURST}" for t in store.top()):
            report.burst_in_redis = time.time()
            return
        time.sleep(0.1)


def run() -> dict[str, Any]:
    seconds = float(os.environ.get("FRESHRANK_BENCH_STREAM_SECONDS", 300))
    load_before = os.getloadavg()[0]
    report = stream(seconds)
    load_after = os.getloadavg()[0]
    figures = report.summary()
    err.print(
        f"flink streaming: {figures['produced']:,} posts in {seconds:.0f} s ({figures['produce_rate']}/s), "
        f"burst in Redis after {figures['burst_delay_s']} s (target ≤ 15 s, slide 10 s, lateness 2 s); "
        f"window lag median {figures['lag_median_s']} s, max {figures['lag_max_s']} s, growth "
        f"{figures['lag_growth_s']} s; consumer lag (committed offsets) median "
        f"{figures['consumer_lag_median']}, max {figures['consumer_lag_max']} messages; "
        f"{figures['counted']:,} posts counted in {figures['windows']} windows; "
        f"load average {load_before:.1f} → {load_after:.1f}"
    )
    return {f"flink_stream_{key}": value for key, value in figures.items()} | {
        "flink_stream_load_average": [round(load_before, 1), round(load_after, 1)],
        "flink_stream_seconds": seconds,
    }
