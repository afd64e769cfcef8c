"""The lifecycle with a real (tiny) trained model: `freshrank train`, models list/show/promote/rollback,
re-scoring on promotion, and the monitor's `retrain_and_promote`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from freshrank.classify.registry import EMBEDDING
from freshrank.config import Settings
from freshrank.loop.service import ScoringLoop
from freshrank.train.lifecycle import retrain_and_promote
from freshrank.train.registry import Registry
from freshrank.trends import Trend, open_trend_store
from tests.train.lifecycle_fixtures import TINY_TRAIN, env_for, tiny_settings

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("freshrank"))


def freshrank(settings: Settings, *args: str, expect: int = 0) -> dict[str, object]:
    done = subprocess.run([CLI, *args], env=env_for(settings), capture_output=True, text=True, timeout=900)
    assert done.returncode == expect, f"exit {done.returncode}:\n{done.stderr[-3000:]}"
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """Settings over a tiny data dir, a loaded search index, one trend, and a tiny params file."""
    tmp = tmp_path_factory.mktemp("lifecycle")
    settings = tiny_settings(tmp)
    ScoringLoop.from_settings(settings).load(settings.movies_path)
    open_trend_store(settings.resolved_trend_store_url).replace(
        [Trend("#christmas", "christmas", 9.0, 40, 1.0)]
    )
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump({"train": TINY_TRAIN}))
    return settings, params


def test_train_register_promote_rollback(world: tuple[Settings, Path]) -> None:
    settings, params = world
    trained = freshrank(settings, "train", "--params", str(params), "--json")
    card = trained["card"]
    assert isinstance(card, dict)
    version = card["version"]
    assert version.startswith("bi-encoder-") and Path(str(trained["model_dir"])).is_dir()
    assert not any((settings.state_dir / "staging").iterdir())  # the staging copy is gone once registered
    metrics = card["metrics"]
    assert 0 <= metrics["ndcg_at_10"] <= 1 and 0 <= metrics["dev_accuracy"] <= 1
    assert card["params"]["encoder_layers"] == 1 and card["data_hash"] and card["parent"] == EMBEDDING

    listed = freshrank(settings, "models", "list", "--json")
    assert listed["champion"] == EMBEDDING
    assert [m["version"] for m in listed["models"]] == [version]  # type: ignore[union-attr]

    registry = Registry.from_settings(settings)
    assert registry.load(version, settings).version == version  # registry id == the classifier's own version

    gate = subprocess.run(
        [CLI, "models", "promote", version, "--json"], env=env_for(settings), capture_output=True, text=True
    )
    decision = json.loads(gate.stdout)
    baseline = decision["champion_metrics"]["ndcg_at_10"]
    should_pass = metrics["ndcg_at_10"] > baseline  # the baseline has no dev accuracy: nDCG alone decides
    assert decision["promoted"] is should_pass and gate.returncode == (0 if should_pass else 1)
    if not should_pass:
        forced = freshrank(settings, "models", "promote", version, "--force", "--json")
        assert forced["promoted"] and forced["forced"]
        decision = forced
    rescored = decision["rescored"]
    service = ScoringLoop.from_settings(settings)
    stored = version + service.calibration.tag  # scores are kept per (model version, calibration)
    assert isinstance(rescored, dict) and rescored["ok"] and rescored["model_version"] == stored
    assert rescored["scored"] == ["christmas"]
    backend = service.backend
    assert "christmas" in backend.scored_labels(stored)

    shown = freshrank(settings, "models", "show", "champion", "--json")
    assert shown["version"] == version and shown["champion"] is True

    back = freshrank(settings, "models", "rollback", "--json")
    assert back["champion_after"] == EMBEDDING and registry.champion() == EMBEDDING
    assert "christmas" in backend.scored_labels(str(back["rescored"]["model_version"]))  # type: ignore[index]
    assert "christmas" in backend.scored_labels(stored)  # the rolled-back model's scores stay cached

    failed = subprocess.run(
        [CLI, "models", "rollback"], env=env_for(settings), capture_output=True, text=True
    )
    assert failed.returncode == 1 and "nothing to roll back" in failed.stderr


def test_bad_training_parameters_exit_2(world: tuple[Settings, Path]) -> None:
    settings, _ = world
    done = subprocess.run(
        [CLI, "train", "--model-type", "nonsense", "--json"],
        env=env_for(settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "bad training parameters" in done.stderr and done.stdout == ""


def test_retrain_and_promote(world: tuple[Settings, Path]) -> None:
    settings, _ = world
    params = settings.state_dir / "retrain-params.yaml"  # another seed: the same recipe is the same version
    params.write_text(yaml.safe_dump({"train": {**TINY_TRAIN, "seed": 1}}))
    settings = settings.model_copy(
        update={"lifecycle": settings.lifecycle.model_copy(update={"params_file": params})}
    )
    registry = Registry.from_settings(settings)
    before = set(registry.versions())
    result = retrain_and_promote(settings)
    assert result.candidate in set(registry.versions()) - before
    assert result.candidate_metrics is not None and result.champion_metrics is not None
    assert result.promoted is (result.candidate_metrics.ndcg_at_10 > result.champion_metrics.ndcg_at_10)  # type: ignore[operator]
    assert registry.champion() == (result.candidate if result.promoted else result.champion_before)
