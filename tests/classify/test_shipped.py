"""A champion shipped as package data: the initial champion of a fresh registry when turned on, the gate and
rollback start from it, and a missing or corrupt copy falls back to the embedding classifier (fast: a
minimal stamped model directory; its weights are never loaded here)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from freshrank.classify.card import DELTA_DIR, ModelCard, stamp_version
from freshrank.classify.delta import DELTA_FILE
from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.factory import load_classifier
from freshrank.classify.registry import EMBEDDING, ModelMetrics, RegistryError
from freshrank.config import Settings
from freshrank.train.lifecycle import judgments_hash, load_judgments, promote, rollback
from freshrank.train.registry import Registry
from tests.train.lifecycle_fixtures import tiny_settings


def stamped_model(folder: Path, metrics: dict[str, object]) -> str:
    """A model directory in the shipped form: card with version and file hashes, top-layer delta files."""
    (folder / DELTA_DIR).mkdir(parents=True)
    (folder / DELTA_DIR / DELTA_FILE).write_bytes(b"weights " + folder.name.encode())
    (folder / DELTA_DIR / "delta.json").write_text("{}")
    return stamp_version(folder, ModelCard(type="hybrid", params={"adapter": "top"}, metrics=metrics))


def shipped_settings(tmp: Path, model: Path) -> Settings:
    settings = tiny_settings(tmp)
    classifier = settings.classifier.model_copy(update={"shipped": True, "shipped_model": model})
    return settings.model_copy(update={"classifier": classifier})


def test_gate_and_rollback_start_from_the_shipped_champion(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path)
    jhash = judgments_hash(load_judgments(settings), settings.lifecycle.crowd)
    version = stamped_model(
        tmp_path / "shipped", {"ndcg_at_10": 0.5, "dev_accuracy": 0.8, "judgments_hash": jhash}
    )
    settings = shipped_settings(tmp_path, tmp_path / "shipped")
    registry = Registry.from_settings(settings)
    assert registry.champion() == version and version in registry.versions()
    assert registry.card(version).metrics.ndcg_at_10 == 0.5  # from its own card, nothing re-measured
    assert not settings.resolved_registry_dir.exists()  # nothing copied or written to resolve it

    def user_model(name: str, ndcg: float) -> str:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "freshrank-model.json").write_text(json.dumps({"type": "bi-encoder"}))
        (folder / "head.npz").write_bytes(name.encode())
        metrics = ModelMetrics(ndcg_at_10=ndcg, dev_accuracy=0.8, judgments_hash=jhash)
        card = registry.register(
            folder,
            model_type="bi-encoder",
            base_model="b",
            data="d",
            data_hash="h",
            params={},
            metrics=metrics,
        )
        assert card.parent == version
        return card.version

    worse = user_model("worse", 0.49)
    assert not promote(settings, worse, rescore=False).promoted and registry.champion() == version
    better = user_model("better", 0.51)
    assert promote(settings, better, rescore=False).promoted and registry.champion() == better
    assert rollback(settings, rescore=False).champion_after == version
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(settings, rescore=False)
    with pytest.raises(RegistryError, match="cannot be removed"):
        registry.remove(version)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "bad card"])
def test_a_missing_or_corrupt_artifact_falls_back_to_embedding(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / f"shipped-{damage.replace(' ', '-')}"
    if damage != "missing":
        stamped_model(folder, {})
    if damage == "corrupt":
        (folder / DELTA_DIR / DELTA_FILE).write_bytes(b"flipped bits")
    elif damage == "bad card":
        (folder / "freshrank-model.json").write_text("{not json")
    settings = shipped_settings(tmp_path, folder)
    with caplog.at_level(logging.WARNING):
        registry = Registry.from_settings(settings)
        classifier = load_classifier(settings)
    assert "shipped champion model is unusable" in caplog.text and "embedding classifier" in caplog.text
    assert registry.champion() == EMBEDDING and isinstance(classifier, EmbeddingClassifier)
    assert not settings.resolved_registry_dir.exists()  # nothing written, nothing lost
    if damage == "corrupt":
        assert "does not match" in caplog.text
