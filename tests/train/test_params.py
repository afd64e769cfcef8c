"""How `freshrank train` combines params.yaml's prepare and train sections with command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from freshrank.train.lifecycle import LifecycleError, read_params, train_params

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_sample_like_the_prepare_stage() -> None:
    params = read_params(REPO / "params.yaml")
    train = train_params(params)
    prepare = params["prepare"]
    assert (train.max_pairs, train.catalog_pairs) == (prepare["max_pairs"], prepare["catalog_pairs"])
    assert train.template == prepare["template"] and train.model_type == params["train"]["model_type"]
    assert train.cosine_template == params["train"]["cosine_template"]
    assert train.rerank_top_k == params["train"]["rerank_top_k"]


def test_prepared_pairs_are_not_sampled_again() -> None:
    params = read_params(REPO / "params.yaml")
    train = train_params(params, prepared=True, data=["models/pairs.jsonl"])
    assert train.max_pairs is None and train.catalog_pairs == 0 and train.data == ["models/pairs.jsonl"]


def test_train_section_then_flags_override(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    sections = {"prepare": {"max_pairs": 10, "catalog_pairs": 5}, "train": {"catalog_pairs": 7, "epochs": 2}}
    path.write_text(yaml.safe_dump(sections))
    train = train_params(read_params(path), epochs=None, catalog_pairs=None, rerank_top_k=9, lr=1e-4)
    assert (train.max_pairs, train.catalog_pairs, train.epochs) == (10, 7, 2)
    assert train.rerank_top_k == 9 and train.lr == 1e-4


def test_bad_values_are_a_clear_error() -> None:
    with pytest.raises(LifecycleError, match="bad training parameters"):
        train_params({"train": {"model_type": "giant"}})
