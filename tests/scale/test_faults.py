"""Faults on real servers: a redis-server, an OpenSearch node and a KServe classifier process of our own are
stopped mid-run. The search service keeps answering (last known trends, or no boost), says so in /health
and /metrics, and a refresh never publishes half a label; each server is restarted after."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from freshrank.catalog.models import Movie
from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.config import SearchSettings, Settings
from freshrank.loop.service import ScoringLoop
from freshrank.search.base import SearchHit, SearchRequest
from freshrank.search.opensearch import OpenSearchBackend, OpenSearchError
from freshrank.trends import open_trend_store
from freshrank.trends.base import Trend
from tests.scale.conftest import SHARED_OPENSEARCH, OpenSearchServer, RedisServer, free_port, wait_until

pytestmark = [pytest.mark.opensearch, pytest.mark.redis]

CHRISTMAS = Trend(hashtag="#Christmas", label="christmas", score=9.0, count=40, baseline=2.0)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> EmbeddingClassifier:
    """The real embedding classifier (all-MiniLM-L6-v2, offline), loaded once for the module."""
    return EmbeddingClassifier(cache_dir=tmp_path_factory.mktemp("embeddings"))


@pytest.fixture
def backend(small_movies: list[Movie], index_name: str) -> Iterator[OpenSearchBackend]:
    engine = OpenSearchBackend(f"opensearch://{SHARED_OPENSEARCH}/{index_name}")
    engine.index(small_movies)
    yield engine
    engine.drop()
    engine.close()


def assert_boosted_by_christmas(hits: list[SearchHit]) -> None:
    """Ranked by the christmas trend scores (no text query): the boost is on."""
    assert len(hits) == 3
    scores = [hit.trend_scores["christmas"] for hit in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


# Raw classifier scores: the z-score calibration needs a real catalogue, not 8 movies.
RAW_SCORES = SearchSettings(calibration="none")


def scale_settings(tmp_path: Path, search_url: str, trend_url: str) -> Settings:
    return Settings(
        state_dir=tmp_path / "state", search_url=search_url, trend_store_url=trend_url, search=RAW_SCORES
    )


def test_redis_down_search_answers_with_last_known_trends(
    private_redis: RedisServer, backend: OpenSearchBackend, classifier: EmbeddingClassifier, tmp_path: Path
) -> None:
    trend_url = f"{private_redis.url}?prefix=fault-test"
    open_trend_store(trend_url).replace([CHRISTMAS])
    settings = scale_settings(tmp_path, backend.url, trend_url)
    service = ScoringLoop(settings, backend, classifier=lambda: classifier)
    service.refresh()  # the loop scores the trends and keeps them as the last known ones

    live = service.search(limit=3)
    assert_boosted_by_christmas(live.hits)
    assert not [w for w in live.warnings if "trend store" in w]
    assert service.health()["trends"] == "ok"

    private_redis.shutdown()  # a real SHUTDOWN: the port is closed
    degraded = service.search(limit=3)
    assert [hit.id for hit in degraded.hits] == [hit.id for hit in live.hits]  # the last known trends boost
    assert any("trend store unavailable" in w and "last known trends" in w for w in degraded.warnings)
    assert service.health()["trends"].startswith("degraded")

    # A fresh process that never saw the store still answers, from the state file or without a boost.
    restarted = ScoringLoop(settings, backend, classifier=lambda: classifier)
    assert_boosted_by_christmas(restarted.search(limit=3).hits)

    private_redis.start()
    # A store that timed out while shutting down is not retried for the breaker's reset time.
    wait_until(lambda: open_trend_store(trend_url).replace([CHRISTMAS]) is None, 20, "trend store writable")
    wait_until(lambda: service.health()["trends"] == "ok", 20, "trend store healthy again")
    assert not [w for w in service.search(limit=3).warnings if "trend store" in w]


def test_health_endpoint_and_metrics_report_a_dead_trend_store(
    private_redis: RedisServer, backend: OpenSearchBackend, tmp_path: Path
) -> None:
    from freshrank.serve.api import create_app

    trend_url = f"{private_redis.url}?prefix=fault-api"
    open_trend_store(trend_url).replace([CHRISTMAS])
    settings = scale_settings(tmp_path, backend.url, trend_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["components"]["trends"] == "ok"
        private_redis.shutdown()
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["components"]["trends"].startswith("degraded")
        answer = client.get("/api/search", params={"q": "christmas"})
        assert answer.status_code == 200 and answer.json()["hits"]
        metrics = client.get("/metrics").text
        assert 'freshrank_component_healthy{component="trends"} 0.0' in metrics
        private_redis.start()
        healthy = lambda: client.get("/health").json()["components"]["trends"] == "ok"  # noqa: E731
        wait_until(healthy, 20, "trend store healthy again")  # after the breaker's reset time
        assert 'freshrank_component_healthy{component="trends"} 1.0' in client.get("/metrics").text


def test_classifier_server_killed_search_uses_stored_scores(
    backend: OpenSearchBackend, classifier: EmbeddingClassifier, tmp_path: Path
) -> None:
    from tests.serve.test_kserve_server import start_server, stop, wait_ready

    port = free_port()
    state = tmp_path / "kserve-state"
    state.mkdir()
    server = start_server(state, port, {"FRESHRANK_SEARCH_URL": backend.url})  # fits the same catalogue
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        settings = Settings(
            state_dir=tmp_path / "state",
            search_url=backend.url,
            trend_store_url=f"sqlite:///{tmp_path / 'trends.db'}",
            classifier={"url": f"http://127.0.0.1:{port}"},  # type: ignore[arg-type]
            search=RAW_SCORES,
        )
        service = ScoringLoop.from_settings(settings)
        report = service.refresh(["#Christmas"])
        assert report.scored == ["christmas"] and not report.failed
        hits = service.search(hashtags=["#Christmas"], limit=3).hits
        assert_boosted_by_christmas(hits)
        boosted = [hit.id for hit in hits]
        server.kill()  # SIGKILL: the model server is gone mid-run
        server.wait(timeout=30)

        page = service.search(hashtags=["#Christmas", "#Dinosaurs"], limit=3)
        assert [hit.id for hit in page.hits] == boosted  # scores already stored still boost
        assert any("dinosaurs" in w for w in page.warnings)  # the new label could not be scored: said so
        failed = service.refresh(["#Dinosaurs"])
        assert failed.failed and "dinosaurs" in failed.failed and not failed.scored
        # The search above retried with backoff, gave up and opened the circuit: refresh fails at once.
        assert "circuit open, not retried yet" in failed.failed["dinosaurs"]
        assert "dinosaurs" not in backend.scored_labels(report.model_version)
    finally:
        stop(server)


@pytest.mark.slow
def test_opensearch_killed_mid_refresh_never_publishes_half_a_label(
    private_opensearch: OpenSearchServer, index_name: str
) -> None:
    engine = OpenSearchBackend(f"opensearch://{private_opensearch.url}/{index_name}", timeout=60)
    movies = [Movie(id=i, title=f"Movie {i}", overview=f"Overview number {i}") for i in range(1, 2501)]
    engine.index(movies)
    engine.put_scores("v1", "before", {1: 0.5})
    scores = {movie.id: 0.25 + (movie.id % 100) / 200 for movie in movies}
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            engine.put_scores("v1", "storm", scores)
            outcome.append(None)
        except BaseException as exc:  # the failure is the point
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.3)
    private_opensearch.kill()
    writer.join(timeout=120)
    assert outcome, "put_scores did not return after the server died"
    if outcome[0] is not None:
        assert isinstance(outcome[0], OpenSearchError)

    down = OpenSearchBackend(engine.url, timeout=5)
    with pytest.raises(OpenSearchError, match="unavailable|failed"):  # while it is down: a clear error
        down.count()
    private_opensearch.script("up")
    wait_until(private_opensearch.healthy, 120, "private OpenSearch back")
    wait_until(lambda: engine.count() == 2500, 60, "index recovered")
    labels = engine.scored_labels("v1")
    assert "before" in labels
    page = engine.search(SearchRequest(labels=("storm",), model_version="v1", limit=2500))
    with_scores = sum(1 for hit in page.hits if hit.trend_scores["storm"] > 0)
    assert with_scores == (2500 if "storm" in labels else 0)  # all of the label, or none of it
    engine.put_scores("v1", "storm", scores)  # a retry after the restart completes the label
    assert "storm" in engine.scored_labels("v1")
    engine.drop()


@pytest.mark.kafka
def test_kafka_stopped_producer_and_job_fail_clearly_search_keeps_trends(
    private_redis: RedisServer, backend: OpenSearchBackend, classifier: EmbeddingClassifier, tmp_path: Path
) -> None:
    import subprocess

    from freshrank.trends.flink.launcher import FlinkUnavailable, run_trend_job
    from freshrank.trends.flink.spec import KafkaTopic
    from freshrank.trends.kafka import KafkaUnavailable, ensure_topic, produce
    from tests.scale.conftest import ROOT, freshrank_bin

    port = free_port()
    env = {
        **os.environ,
        "SERVICES_DIR": str(tmp_path / "services"),
        "FRESHRANK_KAFKA_PORT": str(port),
        "FRESHRANK_KAFKA_CONTROLLER_PORT": str(free_port()),
    }

    def kafka(command: str) -> None:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "kafka.sh"), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr

    bootstrap = f"127.0.0.1:{port}"
    posts = [
        json.dumps(
            {"text": f"post {i} #faulttest", "created_at": 1_800_000_000_000 + i * 1000, "user": f"u{i % 7}"}
        )
        for i in range(50)
    ]
    trend_url = f"{private_redis.url}?prefix=fault-kafka"
    open_trend_store(trend_url).replace([CHRISTMAS])
    settings = scale_settings(tmp_path, backend.url, trend_url)
    service = ScoringLoop(settings, backend, classifier=lambda: classifier)
    kafka("up")
    try:
        ensure_topic("fault-posts", bootstrap)
        assert produce(posts, "fault-posts", bootstrap).sent == 50
        kafka("down")  # the broker stops mid-run

        with pytest.raises(KafkaUnavailable):
            produce(posts, "fault-posts", bootstrap)
        command = [
            freshrank_bin(),
            "trends",
            "produce",
            "-i",
            "-",
            "-t",
            "fault-posts",
            "--bootstrap",
            bootstrap,
        ]
        cli = subprocess.run(command, input="\n".join(posts), capture_output=True, text=True, timeout=120)
        assert cli.returncode == 3 and "Kafka unavailable" in cli.stderr  # EXIT_UNAVAILABLE, one clear line
        with pytest.raises(FlinkUnavailable):
            run_trend_job(KafkaTopic(topic="fault-posts", bootstrap=bootstrap), trend_url, service.settings)
        page = service.search(limit=3)  # the trend store still holds the last snapshot the job wrote
        assert_boosted_by_christmas(page.hits)
        assert service.health()["trends"] == "ok"

        kafka("up")  # back, with the posts it had acknowledged
        assert produce(posts, "fault-posts", bootstrap).sent == 50
    finally:
        kafka("down")
