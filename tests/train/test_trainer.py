"""Training end to end with tiny models: files, card, metrics, loss curve, every model type."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from freshrank.catalog.models import Movie
from freshrank.classify.card import read_card
from freshrank.classify.models import load_model_dir
from freshrank.config import Settings
from freshrank.train.data import NOT_ENTAILMENT
from freshrank.train.trainer import TrainParams, nli_loss, train
from tests.classify.conftest import tiny_params


def _settings(tmp_path: Path, shared_data: Path) -> Settings:
    return Settings(data_dir=shared_data, state_dir=tmp_path / "state")


def test_tiny_bi_encoder_fine_tunes_and_scores(
    tmp_path: Path, shared_data: Path, small_movies: list[Movie]
) -> None:
    params = tiny_params(
        model_type="bi-encoder", freeze_encoder=False, max_steps=2, weights=None, catalog_pairs=8
    )
    result = train(params, tmp_path / "bi", _settings(tmp_path, shared_data))
    assert result.steps == 2 and result.train_pairs == 64 + 8 and 0.0 <= result.dev_accuracy <= 1.0
    assert not (tmp_path / "bi" / "cross").exists()
    card = read_card(tmp_path / "bi")
    assert card.type == "bi-encoder" and card.weights == {"nli": 1.0}
    with open(tmp_path / "bi" / "loss.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["part"] for r in rows] == ["bi-encoder", "bi-encoder"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    scores = (
        load_model_dir(tmp_path / "bi", _settings(tmp_path, shared_data))
        .fit(small_movies)
        .score(["#zombies"])
    )
    assert scores.shape == (1, len(small_movies))


def test_tiny_cross_encoder_from_local_csv(tmp_path: Path, shared_data: Path) -> None:
    data = tmp_path / "pairs.csv"
    with open(data, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["premise", "hypothesis", "label", "split"])
        writer.writerows([["A man sings.", "Someone sings.", "entailment", "train"]] * 10)
        writer.writerows(
            [["A dog sleeps.", "A dog runs.", "contradiction", "train"], ["", "x", "neutral", "train"]]
        )
        writer.writerows([["A man sings.", "Someone sings.", "entailment", "dev"]] * 3)
    params = tiny_params(
        model_type="cross-encoder", data=[str(data)], weights=None, catalog_pairs=0, batch_size=4
    )
    result = train(params, tmp_path / "cross", _settings(tmp_path, shared_data))
    assert result.train_pairs == 11 and result.skipped_rows == {"missing text": 1}
    config = json.loads((tmp_path / "cross" / "cross" / "config.json").read_text())
    assert config["label2id"]["entailment"] == 0
    metrics = json.loads((tmp_path / "cross" / "metrics.json").read_text())
    assert metrics["dev_accuracy"] == result.dev_accuracy and metrics["device"] in ("cpu", "cuda")


def test_no_usable_pairs_is_a_clear_error(tmp_path: Path, shared_data: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"premise": "", "hypothesis": "h", "label": "entailment"}\nnot json\n')
    with pytest.raises(ValueError, match="no usable NLI pairs"):
        train(
            TrainParams(data=[str(data)], catalog_pairs=0), tmp_path / "m", _settings(tmp_path, shared_data)
        )


def test_nli_loss_two_way_rows() -> None:
    logits = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [-5.0, 2.0, 2.0]])
    sure_entailment = nli_loss(logits[:1], torch.tensor([0]))
    wrong_not_entailment = nli_loss(logits[1:2], torch.tensor([NOT_ENTAILMENT]))
    right_not_entailment = nli_loss(logits[2:], torch.tensor([NOT_ENTAILMENT]))
    assert float(sure_entailment) < 0.02 and float(right_not_entailment) < 0.01
    assert float(wrong_not_entailment) > 4.0
    assert float(nli_loss(logits, torch.tensor([0, NOT_ENTAILMENT, 2]))) > 0
