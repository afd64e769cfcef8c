"""Registry, model cards, the gate, promotion and rollback (fast: minimal model directories)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freshrank.classify.registry import EMBEDDING, ModelMetrics, RegistryError
from freshrank.config import Settings
from freshrank.train import lifecycle
from freshrank.train.lifecycle import gate, judgments_hash, load_judgments, promote, rollback
from freshrank.train.registry import Registry
from tests.train.lifecycle_fixtures import tiny_settings


def model_dir(root: Path, payload: bytes, model_type: str = "bi-encoder") -> Path:
    """A minimal self-describing model directory (card + one weights file)."""
    root.mkdir(parents=True)
    (root / "freshrank-model.json").write_text(json.dumps({"type": model_type}))
    (root / "head.npz").write_bytes(payload)
    (root / "metrics.json").write_text(json.dumps({"dev_accuracy": 0.5}))
    return root


def register(registry: Registry, path: Path, ndcg: float | None, acc: float | None, jhash: str) -> str:
    metrics = ModelMetrics(ndcg_at_10=ndcg, dev_accuracy=acc, judgments_hash=jhash)
    card = registry.register(
        path,
        model_type="bi-encoder",
        base_model="base",
        data="pairs.jsonl",
        data_hash="d1",
        params={"lr": 1},
        metrics=metrics,
    )
    return card.version


@pytest.fixture
def lc_settings(tmp_path: Path) -> Settings:
    return tiny_settings(tmp_path)


def test_version_is_a_content_hash_and_registration_is_idempotent(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    a = register(registry, model_dir(tmp_path / "a", b"weights-a"), 0.5, 0.8, "j")
    again = register(registry, model_dir(tmp_path / "a2", b"weights-a"), 0.6, 0.8, "j")
    b = register(registry, model_dir(tmp_path / "b", b"weights-b"), 0.5, 0.8, "j")
    assert a == again and a != b and a.startswith("bi-encoder-")
    assert registry.versions() == [a, b]
    card = registry.card(a)
    assert card.metrics.ndcg_at_10 == 0.6 and card.parent == EMBEDDING and card.base_model == "base"
    assert (registry.root / a / "model" / "head.npz").read_bytes() == b"weights-a"
    markdown = (registry.root / a / "model_card.md").read_text()
    assert a in markdown and "pairs.jsonl" in markdown and "0.6000" in markdown
    assert registry.resolve(a[:15]) == a
    with pytest.raises(RegistryError, match="no model version"):
        registry.resolve("nope")


def test_metrics_files_do_not_change_the_version(tmp_path: Path) -> None:
    first = model_dir(tmp_path / "a", b"w")
    second = model_dir(tmp_path / "b", b"w")
    (second / "metrics.json").write_text("{}")
    registry = Registry(tmp_path / "r")
    assert register(registry, first, 0.1, 0.1, "j") == register(registry, second, 0.1, 0.1, "j")


def test_not_a_model_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.bin").write_bytes(b"x")
    registry = Registry(tmp_path / "r")
    with pytest.raises(RegistryError, match="missing or empty"):
        register(registry, tmp_path / "empty", 0.1, 0.1, "j")
    with pytest.raises(RegistryError, match="not a freshrank model directory"):
        register(registry, tmp_path / "plain", 0.1, 0.1, "j")


@pytest.mark.parametrize(
    ("candidate", "champion", "passed"),
    [
        ((0.60, 0.80), (0.55, None), True),  # the embedding baseline has no dev accuracy
        ((0.55, 0.80), (0.55, 0.80), False),  # a tie is not a win
        ((0.54, 0.90), (0.55, 0.80), False),
        ((0.60, 0.791), (0.55, 0.80), True),  # 0.9 points worse: allowed
        ((0.60, 0.789), (0.55, 0.80), False),  # 1.1 points worse: refused
        ((0.60, None), (0.55, 0.80), False),
        ((None, 0.90), (0.55, 0.80), False),
    ],
)
def test_gate_rule(
    candidate: tuple[float | None, float | None], champion: tuple[float | None, float | None], passed: bool
) -> None:
    decision = gate(
        "c",
        ModelMetrics(*candidate, judgments_hash="j"),
        "p",
        ModelMetrics(*champion, judgments_hash="j"),
        0.01,
    )
    assert decision.passed is passed, decision.reasons


def test_gate_refuses_metrics_from_other_judgments() -> None:
    decision = gate(
        "c", ModelMetrics(0.9, 0.9, judgments_hash="a"), "p", ModelMetrics(0.1, 0.1, judgments_hash="b"), 0.01
    )
    assert not decision.passed and "different judgments" in decision.reasons[0]


def test_promote_gate_force_and_rollback(lc_settings: Settings, tmp_path: Path) -> None:
    registry = Registry.from_settings(lc_settings)
    jhash = judgments_hash(load_judgments(lc_settings), lc_settings.lifecycle.crowd)
    assert registry.champion() == EMBEDDING
    baseline = lifecycle.baseline_card(lc_settings, registry).metrics  # really measured on the 8 movies
    assert baseline.ndcg_at_10 is not None and 0 < baseline.ndcg_at_10 <= 1 and baseline.dev_accuracy is None
    assert set(baseline.per_query) == {
        "#christmas|",
        "#christmas|Family",
        "#dinosaurs|",
        "#halloween|",
        "#zombies|",
    }

    worse = register(registry, model_dir(tmp_path / "w", b"w"), baseline.ndcg_at_10 - 0.01, 0.9, jhash)
    result = promote(lc_settings, worse, rescore=False)
    assert not result.promoted and registry.champion() == EMBEDDING
    assert "does not beat" in result.reasons[0]

    better = register(registry, model_dir(tmp_path / "b", b"b"), baseline.ndcg_at_10 + 0.01, 0.8, jhash)
    result = promote(lc_settings, better, rescore=False)
    assert result.promoted and registry.champion() == better

    # better on nDCG but 2 points less accurate than the champion: refused unless forced
    sloppy = register(registry, model_dir(tmp_path / "s", b"s"), baseline.ndcg_at_10 + 0.02, 0.78, jhash)
    assert not promote(lc_settings, sloppy, rescore=False).promoted
    forced = promote(lc_settings, sloppy, force=True, rescore=False)
    assert forced.promoted and forced.forced and registry.champion() == sloppy
    assert registry.card(sloppy).parent == better  # registered while `better` was champion

    assert rollback(lc_settings, rescore=False).champion_after == better
    assert rollback(lc_settings, rescore=False).champion_after == EMBEDDING
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(lc_settings, rescore=False)
    reasons = [entry.reason for entry in registry.history()]
    assert reasons[0] == "initial champion" and reasons[-1].startswith("rollback")


def test_champion_is_remeasured_when_judgments_change(lc_settings: Settings) -> None:
    registry = Registry.from_settings(lc_settings)
    first = lifecycle.baseline_card(lc_settings, registry).metrics
    path = lc_settings.judgments_dir / "keyword_judgments.csv"
    path.write_text(path.read_text() + "#dinosaurs,,5,1\n")
    second = lifecycle.current_metrics(lc_settings, registry, EMBEDDING)
    assert second.judgments_hash != first.judgments_hash
    assert second.per_query["#dinosaurs|"] != first.per_query["#dinosaurs|"]


def test_bad_judgment_rows_are_skipped_and_missing_files_are_clear(lc_settings: Settings) -> None:
    path = lc_settings.judgments_dir / "keyword_judgments.csv"
    path.write_text(path.read_text() + "#x,,notanumber,1\n")
    assert len(load_judgments(lc_settings)) == 8
    missing = lc_settings.model_copy(
        update={"lifecycle": lc_settings.lifecycle.model_copy(update={"judgments": ["nope.csv"]})}
    )
    with pytest.raises(lifecycle.LifecycleError, match="judgments file not found"):
        load_judgments(missing)


def test_load_embedding_and_unknown(lc_settings: Settings) -> None:
    registry = Registry.from_settings(lc_settings)
    assert registry.load("champion", lc_settings).version.startswith("embedding-")
    with pytest.raises(RegistryError):
        registry.load("deadbeef", lc_settings)
