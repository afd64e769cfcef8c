"""The monitor's decisions on constructed situations: the pure decision, and the real CLI on a small index."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from freshrank.classify.encoder import TorchEncoder
from freshrank.cli import app
from freshrank.config import Settings
from freshrank.evaluate import open_judgment_store
from freshrank.evaluate.base import EvaluationRun
from freshrank.exitcodes import EXIT_UNAVAILABLE
from freshrank.monitor.freshness import Embed, MonitorInput, Thresholds, decide, peak_z
from freshrank.trends import Trend, open_trend_store

EVALUATED = ["christmas", "halloween", "zombies", "dinosaurs", "superhero"]
NEW_TOPICS = ["stock market crash", "election results", "bitcoin price"]


@pytest.fixture(scope="module")
def embed() -> Embed:
    encoder = TorchEncoder()
    return lambda texts: np.asarray(encoder.encode(list(texts)))


def _peaked(seed: int) -> list[float]:
    """Ten movies clearly about the label, a thousand that are not."""
    rng = random.Random(seed)
    top = [rng.uniform(0.8, 0.95) for _ in range(10)]
    return sorted(top + [rng.uniform(0.3, 0.5) for _ in range(1000)], reverse=True)


def _flat(seed: int) -> list[float]:
    """A plateau: the model gives half the sample the same high score, so its top 10 does not stand out."""
    rng = random.Random(seed)
    return sorted([0.6 + rng.uniform(-0.001, 0.001) for _ in range(100)] + [0.4] * 100, reverse=True)


def _scaled(scores: list[float], factor: float) -> list[float]:
    """The same shape, lower: the model separates the movies but believes none of them."""
    return [s * factor for s in scores]


def _situation(**changes: object) -> MonitorInput:
    data = MonitorInput(
        classifier="nli", model_version="v1", trending=["xmas", "zombie apocalypse"],
        scored={"xmas", "zombie apocalypse"},
        score_samples={"xmas": _peaked(1), "zombie apocalypse": _peaked(2)},
        probability_scores=True, evaluated_labels=EVALUATED, latest_ndcg=0.52, recorded_ndcg=0.55,
        model_created=datetime.now(UTC) - timedelta(days=3),
    )  # fmt: skip
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def test_fresh_model_is_ok(embed: Embed) -> None:
    report = decide(_situation(), Thresholds(), embed)
    assert report.decision == "ok" and report.exit_code == 0 and report.reasons == []
    assert report.checks["vocabulary_drift"]["share"] == 0.0  # xmas ~ christmas, zombie apocalypse ~ zombies


def test_unscored_trending_label_means_reclassify(embed: Embed) -> None:
    report = decide(_situation(trending=["xmas", "zombie apocalypse", "santa claus"]), Thresholds(), embed)
    assert (report.decision, report.exit_code) == ("reclassify", 10)
    assert "santa claus" in report.reasons[0]


@pytest.mark.parametrize(
    ("changes", "signal"),
    [
        ({"score_samples": {"xmas": _flat(1), "zombie apocalypse": _flat(2)}}, "flat_scores"),
        ({"score_samples": {"xmas": _scaled(_peaked(1), 0.4), "zombie apocalypse": _scaled(_peaked(2), 0.5)}},
         "low_confidence"),
        ({"trending": NEW_TOPICS, "scored": set(NEW_TOPICS), "score_samples": {}}, "vocabulary_drift"),
        ({"latest_ndcg": 0.31}, "metric_drop"),
        ({"model_created": datetime.now(UTC) - timedelta(days=90)}, "model_age"),
    ],
)  # fmt: skip
def test_stale_model_means_retrain(embed: Embed, changes: dict[str, object], signal: str) -> None:
    report = decide(_situation(**changes), Thresholds(), embed)
    assert (report.decision, report.exit_code) == ("retrain", 11)
    assert [s.name for s in report.signals] == [signal]


def test_retrain_wins_over_reclassify(embed: Embed) -> None:
    report = decide(
        _situation(trending=["xmas", "zombie apocalypse", "new"], latest_ndcg=0.2), Thresholds(), embed
    )
    assert report.decision == "retrain"
    assert {s.name for s in report.signals} == {"unscored_labels", "metric_drop"}


def test_peak_z_needs_a_sample_and_sees_peaks() -> None:
    assert peak_z([0.9] * 5) is None
    assert peak_z(_flat(3)) is not None and peak_z(_peaked(3)) is not None
    assert peak_z(_peaked(3)) > Thresholds().min_peak_z > peak_z(_flat(3))  # type: ignore[operator]


# The real command on a small index ---------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("monitor")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import SMALL_MOVIES

    catalog = root / "movies.jsonl"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in SMALL_MOVIES), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRESHRANK_STATE_DIR", str(root / "state"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert CliRunner().invoke(app, ["load", "-i", str(catalog)]).exit_code == 0
        yield Settings()


def _monitor(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, ["monitor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_monitor_command_decides_and_acts(env: Settings) -> None:
    code, doc = _monitor()
    assert (code, doc["decision"]) == (0, "ok")  # nothing trends yet
    open_trend_store(env.resolved_trend_store_url).replace([Trend("#christmas", "christmas", 9.0, 50, 1.0)])
    code, doc = _monitor()
    assert (code, doc["decision"]) == (10, "reclassify")
    assert doc["checks"]["unscored_labels"] == ["christmas"]  # type: ignore[index]
    code, doc = _monitor("--act")
    assert code == 0 and doc["acted"]["action"] == "reclassify" and doc["acted"]["ok"]  # type: ignore[index]
    code, doc = _monitor()
    assert (code, doc["decision"]) == (0, "ok")  # scored now
    # The model's recorded nDCG@10 was 0.6; its latest evaluation on the same trends gives 0.3.
    store = open_judgment_store(env.resolved_judgments_url)
    for value in (0.6, 0.3):
        run = EvaluationRun("evaluate", "embedding", str(doc["model_version"]), 8, {}, ["#christmas"], {})
        run.mean = {"ndcg@10": value}
        store.record_run(run)
    store.close()
    code, doc = _monitor()
    assert (code, doc["decision"]) == (11, "retrain")
    assert [s["name"] for s in doc["signals"]] == ["metric_drop"]  # type: ignore[index]


def test_monitor_exits_3_when_the_trend_store_is_unreachable(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRESHRANK_TREND_STORE_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(app, ["monitor", "--json", "--no-drift"])
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert "trend store unavailable" in result.stderr and result.stdout == ""


def test_peak_z_reads_search_calibrated_scores() -> None:
    raw = np.asarray(_peaked(4))
    z = (raw - raw.mean()) / raw.std()
    stored = np.maximum(0.0, z - 2.0).tolist()  # what search stores with its z-score calibration
    assert peak_z(stored, z_offset=2.0) == pytest.approx(peak_z(raw.tolist()))
