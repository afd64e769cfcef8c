"""The Flink job on a live Kafka topic: a burst reaches Redis's top N while posts stream in, and a job killed
mid-stream resumes from its checkpoint with no window lost or counted twice."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freshrank.bench.flink_stream import BURST, stream
from freshrank.config import Settings
from freshrank.trends.base import Trend
from freshrank.trends.engine import TrendEngine
from freshrank.trends.flink.launcher import run_trend_job
from freshrank.trends.flink.rows import window_trends
from freshrank.trends.flink.spec import Checkpoints, KafkaTopic
from freshrank.trends.kafka import delete_topic, ensure_topic, produce
from freshrank.trends.sources.replay import replay_lines
from tests.trends.test_flink_job import TEST_TRENDS, assert_same_trends, generate_posts

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.redis]

BOOTSTRAP = os.environ.get("FRESHRANK_TEST_KAFKA", "127.0.0.1:9092")


def test_a_burst_in_a_live_stream_reaches_the_redis_top_n() -> None:
    report = stream(45, window_seconds=20)  # 1,000 posts/s, the burst from 27 s on
    summary = report.summary()
    assert report.produced > 40_000
    assert report.delay_s is not None, f"#{BURST} never reached Redis: {summary}"
    ends = [w["end"] for w in report.windows]
    assert ends == sorted(ends) and all(b - a == 10_000 for a, b in zip(ends, ends[1:], strict=False))
    assert summary["counted"] <= report.produced


@pytest.fixture
def topic() -> Iterator[str]:
    name = f"freshrank-test-restart-{uuid.uuid4().hex[:12]}"
    ensure_topic(name, BOOTSTRAP, partitions=1)
    yield name
    delete_topic(name, BOOTSTRAP)


def _latest_checkpoint(root: Path) -> Path | None:
    done = [meta.parent for meta in root.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def _run(topic: str, checkpoints: Checkpoints, stop: threading.Event, until: Any) -> list[dict[str, Any]]:
    """Run the job live in a thread; ``until(windows)`` decides when to kill it (checked as windows come)."""
    windows: list[dict[str, Any]] = []

    def seen(window: dict[str, Any]) -> None:
        windows.append(window)

    settings = Settings(trends=TEST_TRENDS)
    source = KafkaTopic(topic=topic, bootstrap=BOOTSTRAP, group_id=topic)
    job = threading.Thread(
        target=run_trend_job,
        args=(source, None, settings),
        kwargs={
            "bounded": False,
            "checkpoints": checkpoints,
            "on_window": seen,
            "stop": stop,
            "parallelism": 2,
        },
        daemon=True,
    )
    job.start()
    for _ in range(1200):
        if until(windows) or not job.is_alive():
            break
        stop.wait(0.25)
    stop.set()
    job.join(60)
    return windows


def test_a_job_killed_mid_stream_resumes_from_its_checkpoint(topic: str, tmp_path: Path) -> None:
    lines = list(generate_posts(seed=5))
    half = len(lines) // 2
    produce(lines[:half], topic, BOOTSTRAP)
    root = tmp_path / "checkpoints"
    every_second = Checkpoints(checkpoint_interval_s=1, checkpoint_dir=root.as_uri())

    # First run: windows fire, a checkpoint completes after them, then the JVM is killed (-9) ...
    # ... once a checkpoint has started after 5 windows fired (its state holds them): two numbers later.
    after: list[int] = []

    def checkpointed(windows: list[dict[str, Any]]) -> bool:
        if len(windows) < 5:
            return False
        latest = _latest_checkpoint(root)
        number = int(latest.name.split("-")[1]) if latest is not None else 0
        if not after:
            after.append(number)
        return number >= after[0] + 2

    first = _run(topic, every_second, threading.Event(), checkpointed)
    checkpoint = _latest_checkpoint(root)
    assert first and checkpoint is not None

    # The rest of the stream, then a post without tags far enough ahead to fire the final window.
    produce(lines[half:], topic, BOOTSTRAP)
    reference, final_end = embedded_final(lines, tmp_path)
    ahead = {"text": "later", "created_at": final_end + 3 * TEST_TRENDS.allowed_lateness_seconds * 1000}
    produce([json.dumps(ahead)], topic, BOOTSTRAP)

    resumed = Checkpoints(checkpoint_interval_s=1, checkpoint_dir=root.as_uri(), restore_from=str(checkpoint))
    second = _run(topic, resumed, threading.Event(), lambda ws: any(w["end"] == final_end for w in ws))
    ends = [w["end"] for w in second]
    assert final_end in ends, ends
    # No window lost: the resumed job goes on from the checkpoint's tick, at most re-firing the windows the
    # first run fired after its checkpoint (the same ones); no window counted twice: the final window equals
    # the embedded engine's on the whole stream.
    assert first[0]["end"] < ends[0] <= first[-1]["end"] + 10_000  # restored: not from the first slice again
    assert all(b - a == 10_000 for a, b in zip(ends, ends[1:], strict=False))
    by_end = {w["end"]: w for w in first}
    for window in second:
        if window["end"] in by_end:
            again = by_end[window["end"]]  # "last" (the latest slice seen) moved on: more posts arrived
            assert (window["rows"], window["posts"]) == (again["rows"], again["posts"])
    final = next(w for w in second if w["end"] == final_end)
    assert_same_trends(window_trends(final), reference)


def embedded_final(lines: list[str], tmp_path: Path) -> tuple[list[Trend], int]:
    """The embedded engine's final top N on the lines, and the end of that window (epoch ms)."""
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = TrendEngine(TEST_TRENDS)
    with path.open(encoding="utf-8") as fh:
        replay_lines(engine, fh)
    engine.finish()
    assert engine.tick is not None
    return engine.top(), int(engine.tick.timestamp() * 1000)
