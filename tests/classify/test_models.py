"""Trained NLI classifiers behind the Classifier interface: shapes, ranges, versions, hostile labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.classify.card import model_digest, read_card
from freshrank.classify.models import NliClassifier, combine_signals, load_model_dir
from freshrank.config import Settings
from freshrank.loop.scores import Calibration
from freshrank.train.export import dev_accuracy

HOSTILE = ["#'; DROP TABLE movies; --", "#" + "x" * 10_000, "", "#🎄", "#StarWarsDay"]


@pytest.fixture
def classifier(tiny_model_dir: Path, settings: Settings) -> NliClassifier:
    return load_model_dir(tiny_model_dir, settings)


def test_fit_score_predict_shapes_and_ranges(classifier: NliClassifier, small_movies: list[Movie]) -> None:
    clf: Classifier = classifier.fit(small_movies)
    labels = ["#christmas", "#dinosaurs", *HOSTILE]
    scores = clf.score(labels)
    assert scores.shape == (len(labels), len(small_movies))
    assert scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1)) and np.isfinite(scores).all()
    predicted = clf.predict(["A boy meets Santa.", "Dinosaurs escape a park.", ""], labels)
    assert predicted.shape == (3, len(labels))
    assert np.all((predicted >= 0) & (predicted <= 1))
    assert clf.score([]).shape == (0, len(small_movies))
    assert clf.predict([], labels).shape == (0, len(labels))


def test_scores_are_deterministic_and_label_order_is_kept(
    classifier: NliClassifier, small_movies: list[Movie]
) -> None:
    classifier.fit(small_movies)
    both = classifier.score(["#christmas", "#dinosaurs"])
    np.testing.assert_allclose(classifier.score(["#dinosaurs"])[0], both[1], atol=1e-5)
    np.testing.assert_allclose(classifier.score(["#christmas"])[0], both[0], atol=1e-5)


def test_version_is_stamped_at_training_and_read_without_hashing(
    tiny_model_dir: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = read_card(tiny_model_dir)
    assert card.version.startswith("hybrid-") and card.files  # stamped once, when training ended
    import freshrank.classify.card as card_module
    import freshrank.classify.models as models_module

    def no_hashing(*args: object) -> str:
        raise AssertionError("a load hashed the weights")

    for module, name in (
        (card_module, "_sha256"),
        (card_module, "model_digest"),
        (models_module, "model_digest"),
    ):
        monkeypatch.setattr(module, name, no_hashing)
    assert load_model_dir(tiny_model_dir, settings).version == card.version
    monkeypatch.undo()
    # a model directory from before stamping: its id is still the content hash of card and weights
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny_model_dir, copy)
    legacy = json.loads((copy / "freshrank-model.json").read_text())
    legacy.pop("version"), legacy.pop("files")
    (copy / "freshrank-model.json").write_text(json.dumps(legacy))
    assert load_model_dir(copy, settings).version == f"hybrid-{model_digest(copy)}"


def test_card_and_missing_directory(tiny_model_dir: Path, tmp_path: Path) -> None:
    card = read_card(tiny_model_dir)
    assert card.type == "hybrid" and card.params["max_pairs"] == 64
    with pytest.raises(FileNotFoundError, match="not a freshrank model directory"):
        read_card(tmp_path)


def test_dev_accuracy_torch_and_onnx(tiny_model_dir: Path) -> None:
    torch_acc = dev_accuracy(tiny_model_dir, limit=40)
    onnx_acc = dev_accuracy(tiny_model_dir, limit=40, onnx=True)
    assert 0.0 <= torch_acc <= 1.0
    assert abs(torch_acc - onnx_acc) <= 0.1


def test_cross_encoder_works_in_the_zero_shot_pipeline(tiny_model_dir: Path) -> None:
    from transformers import pipeline

    classify = pipeline("zero-shot-classification", model=str(tiny_model_dir / "cross"), device="cpu")
    result = classify(
        "A boy is left home alone at Christmas.",
        candidate_labels=["christmas", "dinosaurs"],
        hypothesis_template="This movie is about {}.",
    )
    assert sorted(result["labels"]) == ["christmas", "dinosaurs"]
    assert abs(sum(result["scores"]) - 1.0) < 1e-4


def test_combine_signals_keeps_the_shortlist_on_top() -> None:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    first = np.linspace(3, -3, 50).astype(np.float32)
    reverse = np.arange(50, dtype=np.float32)  # the cross-encoder prefers what the first stage ranks lowest

    out = combine_signals(
        {"cosine": first},
        {"cosine": 1.0, "cross": 1000.0},
        docs,
        top_k=5,
        cross_fn=lambda rows: reverse[rows],
    )
    order = np.argsort(-out.combined)
    assert list(order[:5]) == [4, 3, 2, 1, 0]  # re-ordered inside the shortlist only
    assert list(order[5:10]) == [5, 6, 7, 8, 9]
    plain = combine_signals({"cosine": first}, {"cosine": 1.0}, docs)
    np.testing.assert_allclose(plain.combined, first)


def test_unit_scores_keep_the_shortlist_order_without_ties() -> None:
    docs = np.zeros((300, 4), dtype=np.float32)
    first = np.linspace(20, -20, 300).astype(np.float32)  # extreme first-stage scores
    cross = np.random.default_rng(2).normal(size=300).astype(np.float32) * 50
    out = combine_signals(
        {"cosine": first}, {"cosine": 1.0, "cross": 1000.0}, docs, top_k=50, cross_fn=lambda rows: cross[rows]
    )
    assert np.all((out.unit >= 0) & (out.unit <= 1))
    assert len(np.unique(out.unit[:50])) == 50  # no float32 saturation inside the shortlist
    np.testing.assert_array_equal(np.argsort(-out.unit), np.argsort(-out.combined))
    assert int(np.argmax(out.unit)) == int(np.argmax(cross[:50]))
    assert out.unit[:50].min() > out.unit[50:].max()


def test_unit_scores_are_an_affine_image_so_calibration_standardises_once() -> None:
    docs = np.zeros((400, 4), dtype=np.float32)
    first = np.random.default_rng(3).normal(size=400).astype(np.float32) * 4  # a sigmoid would saturate
    cross = np.random.default_rng(4).normal(size=400).astype(np.float32)
    for weights in ({"cosine": 1.0}, {"cosine": 1.0, "cross": 1.0}):
        out = combine_signals({"cosine": first}, weights, docs, top_k=30, cross_fn=lambda rows: cross[rows])
        calibration = Calibration(2.0)
        np.testing.assert_allclose(calibration.apply(out.unit), calibration.apply(out.combined), atol=1e-4)
