"""The champion that is actually in the package: intact, within the size limit, the default champion of a
fresh install, loaded through the product path (deltas merged into the base, ONNX), and ranking with sense."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from freshrank.classify.card import DELTA_DIR, read_card
from freshrank.classify.factory import load_classifier
from freshrank.classify.models import NliClassifier
from freshrank.classify.shipped import SHIPPED_DIR, shipped_champion
from freshrank.config import ClassifierSettings, Settings
from freshrank.train.registry import Registry
from freshrank.train.ship import MAX_BYTES, MODEL_CARD

REPO = Path(__file__).resolve().parents[2]


def test_the_package_holds_an_intact_champion_within_the_size_limit() -> None:
    shipped = shipped_champion()
    assert shipped is not None and shipped.model_dir == SHIPPED_DIR.resolve()
    card = read_card(SHIPPED_DIR)
    assert card.type == "hybrid" and card.params["adapter"] == "top" and (SHIPPED_DIR / DELTA_DIR).is_dir()
    size = sum(p.stat().st_size for p in SHIPPED_DIR.rglob("*") if p.is_file())
    assert size <= MAX_BYTES
    assert shipped.version in (SHIPPED_DIR / MODEL_CARD).read_text()
    for key in ("ndcg_at_10", "per_query", "judgments_hash", "dev_accuracy", "data_hash", "steps"):
        assert card.metrics.get(key) is not None, key


def test_the_repo_params_are_the_recipe_the_card_records() -> None:
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    card = read_card(SHIPPED_DIR)
    for key, value in params["train"].items():
        if key not in ("device", "checkpoint_every"):
            assert card.params[key] == value, key
    assert card.params["template"] == params["prepare"]["template"]
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    shipped = {o["path"] for o in lock["stages"]["ship"]["outs"]}
    assert shipped == {"src/freshrank/classify/champion"}


def test_a_fresh_install_serves_the_shipped_champion(tmp_path: Path) -> None:
    assert ClassifierSettings().shipped  # on by default (the test suite turns it off for its own registries)
    settings = Settings(state_dir=tmp_path / "state")
    settings = settings.model_copy(
        update={"classifier": settings.classifier.model_copy(update={"shipped": True})}
    )
    registry = Registry.from_settings(settings)
    version = read_card(SHIPPED_DIR).version
    assert registry.champion() == version and registry.is_shipped(version)
    classifier = load_classifier(settings)
    assert isinstance(classifier, NliClassifier) and classifier.version == version


def test_the_shipped_cross_encoder_reads_movies_as_an_nli_model_should(tmp_path: Path) -> None:
    """Through ONNX, as served: each overview entails its own topic more than the others."""
    settings = Settings(state_dir=tmp_path / "state")
    classifier = NliClassifier(SHIPPED_DIR, settings)
    overviews = [
        "Scientists clone extinct reptiles for an island theme park, and the T. rex escapes its paddock.",
        "On the night before December 25th a boy waits for Santa, presents under the tree and snow outside.",
        "After a virus turns the living into flesh-eating zombies, survivors barricade a shopping mall.",
        "A masked vigilante with super strength and a cape saves the city from a villain.",
    ]
    labels = ["#dinosaurs", "#christmas", "#zombies", "#superhero"]
    template = classifier.card.template
    pairs = [
        (text, template.format(label=classifier.label_text(label))) for text in overviews for label in labels
    ]
    logits = np.asarray(classifier.cross.logits(pairs)).reshape(len(overviews), len(labels), 3)
    entail = logits[..., 0] - np.logaddexp(logits[..., 1], logits[..., 2])
    assert list(entail.argmax(axis=1)) == [0, 1, 2, 3], json.dumps(entail.round(2).tolist())
