"""A tiny trained hybrid model (1 encoder layer, a few steps) shared by the classifier tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshrank.config import Settings
from freshrank.train.trainer import TrainParams, train
from tests.conftest import SHARED_DATA

TINY_WEIGHTS = {"cosine": 1.0, "lexical": 0.5, "nli": 0.5, "prf": 0.5, "cross": 1.0}


def tiny_params(**overrides: object) -> TrainParams:
    """Seconds on CPU: 64 pairs, 5 steps, a one-layer encoder, 50 dev pairs."""
    values: dict[str, object] = dict(
        model_type="hybrid",
        max_pairs=64,
        max_steps=5,
        encoder_layers=1,
        head_epochs=2,
        dev_pairs=50,
        weights=TINY_WEIGHTS,
        rerank_top_k=4,
    )
    values.update(overrides)
    return TrainParams.model_validate(values)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SHARED_DATA / "nli" / "nli_pairs.jsonl.gz").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set FRESHRANK_DATA_DIR")
    root = tmp_path_factory.mktemp("tiny-model")
    settings = Settings(data_dir=SHARED_DATA, state_dir=root / "state")
    return train(tiny_params(), root / "model", settings).model_dir
