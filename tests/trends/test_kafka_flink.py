"""Tweets in at one end, trends out at the other: `freshrank trends produce` → Kafka → Flink job → Redis."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrank.cli import app
from freshrank.config import Settings
from freshrank.trends.flink.launcher import run_trend_job
from freshrank.trends.flink.spec import KafkaTopic
from freshrank.trends.kafka import delete_topic
from freshrank.trends.stores.redis import RedisTrendStore
from tests.trends.test_flink_job import (
    REDIS_URL,
    TEST_TRENDS,
    assert_same_trends,
    embedded_top,
    generate_posts,
)

pytestmark = [pytest.mark.kafka, pytest.mark.flink, pytest.mark.redis]

BOOTSTRAP = os.environ.get("FRESHRANK_TEST_KAFKA", "127.0.0.1:9092")


@pytest.fixture(scope="module")
def posts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kafka") / "posts.jsonl"
    path.write_text("\n".join(generate_posts(seed=11)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def topic() -> Iterator[str]:
    name = f"freshrank-test-posts-{uuid.uuid4().hex[:12]}"
    yield name
    delete_topic(name, BOOTSTRAP)


@pytest.fixture(scope="module")
def produced(posts_file: Path, topic: str) -> dict[str, object]:
    result = CliRunner().invoke(
        app,
        [
            "trends",
            "produce",
            "--input",
            str(posts_file),
            "--topic",
            topic,
            "--bootstrap",
            BOOTSTRAP,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module")
def redis_store() -> Iterator[RedisTrendStore]:
    store = RedisTrendStore(f"{REDIS_URL}?prefix=freshrank-test-kafka-{uuid.uuid4().hex[:12]}")
    store._redis.ping()
    yield store
    store.clear()
    store.close()


def test_produce_sends_every_well_formed_line(produced: dict[str, object], posts_file: Path) -> None:
    lines = sum(1 for line in posts_file.read_text(encoding="utf-8").splitlines() if line.strip())
    assert produced["malformed"] == 3  # invalid JSON, no created_at, unreadable created_at
    assert produced["sent"] == lines - 3
    assert [m["line"] for m in produced["malformed_lines"]] == [202, 203, 204]  # type: ignore[attr-defined]


def test_flink_job_reads_the_topic_and_writes_the_burst_to_redis(
    produced: dict[str, object],
    topic: str,
    redis_store: RedisTrendStore,
    posts_file: Path,
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path / "state", trends=TEST_TRENDS)
    source = KafkaTopic(topic=topic, bootstrap=BOOTSTRAP, group_id=f"freshrank-test-{uuid.uuid4().hex[:8]}")
    result = run_trend_job(source, f"{REDIS_URL}?prefix={redis_store.prefix}", settings, bounded=True)
    snapshot = redis_store.top()
    assert snapshot, "the job wrote no snapshot"
    assert snapshot[0].hashtag == "#SharkWeek"
    assert snapshot == result.to_trends()
    assert result.posts == produced["sent"] - 0  # every produced post has a readable time
    assert_same_trends(snapshot, embedded_top(posts_file, TEST_TRENDS))
