"""End to end on the real engines: tweets → Kafka → the PyFlink trend job → Redis → ScoringLoop.refresh()
with the OpenSearch backend → a trend-boosted OpenSearch result. Every name is unique to the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from freshrank.catalog.models import Movie
from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.config import SearchSettings, Settings, TrendSettings
from freshrank.loop.service import ScoringLoop
from freshrank.search.opensearch import OpenSearchBackend
from freshrank.trends import open_trend_store
from freshrank.trends.flink.launcher import run_trend_job
from freshrank.trends.flink.spec import KafkaTopic
from freshrank.trends.kafka import produce
from freshrank.trends.simulate import Scenario, load_texts, post_to_json
from tests.scale.conftest import SHARED_OPENSEARCH

pytestmark = [
    pytest.mark.opensearch,
    pytest.mark.redis,
    pytest.mark.kafka,
    pytest.mark.flink,
    pytest.mark.slow,
]

KAFKA = os.environ.get("FRESHRANK_TEST_KAFKA", "127.0.0.1:9092")
REDIS = os.environ.get("FRESHRANK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JURASSIC_PARK = 3


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic(run_id: str) -> Iterator[str]:
    name = f"freshrank-e2e-{run_id}"
    yield name
    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        admin.delete_topics([name])
    except Exception:  # never created (the test failed before producing)
        pass
    finally:
        admin.close()


@pytest.fixture
def backend(run_id: str, small_movies: list[Movie]) -> Iterator[OpenSearchBackend]:
    engine = OpenSearchBackend(f"opensearch://{SHARED_OPENSEARCH}/freshrank-e2e-{run_id}")
    engine.index(small_movies)
    yield engine
    engine.drop()
    engine.close()


def test_tweets_through_kafka_and_flink_boost_opensearch(
    shared_data: Path, tmp_path: Path, run_id: str, topic: str, backend: OpenSearchBackend
) -> None:
    # 15 minutes of replayed tweets; #dinosaurs bursts in the last 2 (the answer is known in advance).
    scenario = Scenario(
        seconds=900,
        background_rate=1.0,
        popular_rate=0.2,
        burst_tag="dinosaurs",
        burst_at_seconds=780,
        burst_seconds=120,
        burst_rate=0.5,
        users=300,
    )
    texts = load_texts(shared_data / "tweets" / "tweeteval_hashtag_tweets.jsonl.gz", limit=2000)
    sent = produce((post_to_json(post) for post in scenario.posts(texts)), topic, KAFKA)
    assert sent.sent > 900 and sent.malformed_count == 0

    store_url = f"{REDIS}?prefix=freshrank-e2e-{run_id}"
    settings = Settings(
        state_dir=tmp_path / "state",
        search_url=backend.url,
        trend_store_url=store_url,
        trends=TrendSettings(window_seconds=300, slide_seconds=30, top_n=5, min_count=3),
        search=SearchSettings(calibration="none"),
    )  # z-scores need more than 8 movies
    store = open_trend_store(store_url)
    try:
        source = KafkaTopic(topic=topic, bootstrap=KAFKA, group_id=f"freshrank-e2e-{run_id}")
        result = run_trend_job(source, store_url, settings, bounded=True, timeout_s=600)
        assert result.posts == sent.sent
        trends = store.top()
        assert trends and trends[0].hashtag.lower() == "#dinosaurs"

        classifier = EmbeddingClassifier(cache_dir=tmp_path / "embeddings")
        service = ScoringLoop(settings, backend, classifier=lambda: classifier)
        unboosted = service.search(hashtags=[], limit=3)
        assert [hit.id for hit in unboosted.hits] == [1, 2, 3]  # no text, no boost: ties by id

        report = service.refresh()
        assert "dinosaurs" in report.scored and not report.failed
        assert "dinosaurs" in backend.scored_labels(report.model_version)

        boosted = service.search(limit=3)  # hashtags=None: the live trends from Redis
        assert not boosted.warnings
        top = boosted.hits[0]
        assert top.id == JURASSIC_PARK
        assert top.trend_scores["dinosaurs"] > 0 and top.score > 0
        dinosaur_text = service.search("park", limit=1)
        assert dinosaur_text.hits[0].id == JURASSIC_PARK
        assert dinosaur_text.hits[0].text_score == pytest.approx(1.0)
    finally:
        store.clear()
        store.close()
