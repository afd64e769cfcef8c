"""The champion shipped as package data: it loads offline, it is the initial champion of a fresh registry,
the gate and rollback start from it, and a missing or corrupt copy falls back to the embedding classifier."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from freshrank.classify.embedding import EmbeddingClassifier
from freshrank.classify.factory import load_classifier
from freshrank.classify.models import ADAPTER_DIR, NliClassifier, read_card
from freshrank.classify.shipped import SHIPPED_DIR, shipped_champion
from freshrank.config import Settings
from freshrank.train.lifecycle import current_metrics, judgments_hash, load_judgments, promote, rollback
from freshrank.train.registry import EMBEDDING, ModelMetrics, Registry, RegistryError
from tests.conftest import small_movies
from tests.train.lifecycle_fixtures import tiny_settings


def shipped_settings(tmp: Path, model: Path | None = None) -> Settings:
    """A fresh state dir over the tiny data, with the shipped champion on (``model``: another copy)."""
    settings = tiny_settings(tmp)
    classifier = settings.classifier.model_copy(update={"shipped": True, "shipped_model": model})
    return settings.model_copy(update={"classifier": classifier})


def test_the_shipped_artifact_is_small_intact_and_versioned_by_its_card() -> None:
    shipped = shipped_champion()
    assert shipped is not None, "src/freshrank/classify/champion is missing or corrupt"
    card = read_card(SHIPPED_DIR)
    assert shipped.version == card.version and card.version.startswith("hybrid-")
    files = [p for p in SHIPPED_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) <= 4 * 2**20  # weights in git: at most 4 MiB in all
    assert (SHIPPED_DIR / ADAPTER_DIR / "adapter_model.safetensors").is_file()
    assert not (SHIPPED_DIR / "encoder").exists() and not (SHIPPED_DIR / "cross").exists()
    # the card says how it was made and how good it was, on which judgments
    assert card.params["adapter"] == "lora" and card.params["seed"] == 0
    assert card.metrics["ndcg_at_10"] > 0 and card.metrics["judgments_hash"] and card.metrics["dev_accuracy"]


def test_a_fresh_state_dir_ranks_with_the_shipped_champion(tmp_path: Path) -> None:
    settings = shipped_settings(tmp_path)
    shipped = shipped_champion()
    assert shipped is not None
    registry = Registry.from_settings(settings)
    assert registry.champion() == shipped.version and shipped.version in registry.versions()
    assert not settings.resolved_registry_dir.exists()  # nothing is copied or written to resolve it

    classifier = load_classifier(settings)  # classifier.name = champion
    assert isinstance(classifier, NliClassifier) and classifier.version == shipped.version
    movies = small_movies()
    scores = classifier.fit(movies).score(["#christmas", "#dinosaurs"])
    assert scores.shape == (2, len(movies)) and ((scores >= 0) & (scores <= 1)).all()
    titles = [m.title for m in movies]
    assert titles[int(scores[0].argmax())] != titles[int(scores[1].argmax())]
    story = [
        "A family celebrates Christmas Eve with Santa Claus.",
        "Scientists clone dinosaurs on an island.",
    ]
    served = classifier.predict(story, ["christmas", "dinosaurs"])
    assert served[0, 0] > served[1, 0] and served[1, 1] > served[0, 1]


def test_gate_and_rollback_start_from_the_shipped_champion(tmp_path: Path) -> None:
    settings = shipped_settings(tmp_path)
    registry = Registry.from_settings(settings)
    shipped = registry.champion()
    jhash = judgments_hash(load_judgments(settings))
    # the tiny judgments are not the ones the card was measured on: the champion is measured again
    measured = current_metrics(settings, registry, shipped)
    assert measured.judgments_hash == jhash and measured.ndcg_at_10 is not None
    accuracy = registry.card(shipped).metrics.dev_accuracy
    assert accuracy is not None

    def user_model(name: str, ndcg: float) -> str:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "freshrank-model.json").write_text(json.dumps({"type": "bi-encoder"}))
        (folder / "head.npz").write_bytes(name.encode())
        metrics = ModelMetrics(ndcg_at_10=ndcg, dev_accuracy=accuracy, judgments_hash=jhash)
        card = registry.register(
            folder,
            model_type="bi-encoder",
            base_model="b",
            data="d",
            data_hash="h",
            params={},
            metrics=metrics,
        )
        assert card.parent == shipped
        return card.version

    worse = user_model("worse", measured.ndcg_at_10 - 0.01)
    assert not promote(settings, worse, rescore=False).promoted and registry.champion() == shipped
    better = user_model("better", measured.ndcg_at_10 + 0.01)
    assert promote(settings, better, rescore=False).promoted and registry.champion() == better
    assert rollback(settings, rescore=False).champion_after == shipped
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(settings, rescore=False)
    with pytest.raises(RegistryError, match="cannot be removed"):
        registry.remove(shipped)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "bad card"])
def test_a_missing_or_corrupt_artifact_falls_back_to_embedding(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "champion"
    if damage != "missing":
        shutil.copytree(SHIPPED_DIR, copy)
    if damage == "corrupt":
        weights = copy / ADAPTER_DIR / "adapter_model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-100] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "bad card":
        (copy / "freshrank-model.json").write_text("{not json")
    settings = shipped_settings(tmp_path, copy)
    with caplog.at_level(logging.WARNING):
        registry = Registry.from_settings(settings)
        classifier = load_classifier(settings)
    assert "shipped champion model is unusable" in caplog.text and "embedding classifier" in caplog.text
    assert registry.champion() == EMBEDDING and isinstance(classifier, EmbeddingClassifier)
    assert not settings.resolved_registry_dir.exists()  # nothing written, nothing lost
    if damage == "corrupt":
        assert "does not match" in caplog.text
