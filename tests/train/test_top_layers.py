"""The champion's recipe: top layers trained on cached lower states, saved as int8 deltas, merged on load."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from freshrank.classify.card import DELTA_DIR, read_card
from freshrank.classify.delta import DELTA_FILE, apply_delta, load_delta, quantize_rows, save_delta
from freshrank.classify.encoder import base_model_path
from freshrank.classify.models import cross_dir
from freshrank.train import top_layers
from freshrank.train.top_layers import SplitCrossEncoder
from freshrank.train.trainer import TrainParams, _cross_model, train
from tests.train.lifecycle_fixtures import tiny_settings

TINY = {
    "model_type": "hybrid",
    "adapter": "top",
    "top_layers": 1,
    "max_pairs": 16,
    "catalog_pairs": 8,
    "batch_size": 8,
    "max_tokens": 32,
    "lr": 1e-3,
    "dev_pairs": 8,
}


def test_int8_row_deltas_round_trip_within_half_a_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = {"w": rng.normal(size=(6, 5)).astype(np.float32), "b": np.zeros(5, np.float32)}
    trained = {"w": base["w"] + rng.normal(scale=1e-3, size=(6, 5)), "b": np.ones(5), "head": np.eye(3)}
    save_delta(trained, base, tmp_path, {"top_layers": 1})
    loaded = load_delta(tmp_path, base)
    _, scale = quantize_rows(trained["w"] - base["w"])
    assert np.all(np.abs(loaded["w"] - trained["w"]) <= scale[:, None] / 2 + 1e-7)
    assert np.allclose(loaded["b"], 1.0) and np.array_equal(loaded["head"], np.eye(3))
    with pytest.raises(ValueError, match="another base"):
        load_delta(tmp_path, {"b": base["b"]})


def test_the_split_model_computes_what_the_whole_model_does() -> None:
    params = TrainParams(adapter="top", top_layers=2)
    model = _cross_model(params, str(base_model_path()), "cpu").eval()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    inputs = tokenizer(
        ["A boy and his dinosaur.", "Ghosts haunt a house on Halloween night, and nobody sleeps."],
        ["This movie is about dinosaurs.", "This movie is about zombies."],
        padding=True,
        return_tensors="pt",
    )
    split = SplitCrossEncoder(model, 2)
    import torch

    with torch.inference_mode():
        whole = model(**inputs).logits
        parts = split.upper(split.lower(inputs), inputs["attention_mask"])
    assert float((whole - parts).abs().max()) < 1e-4
    names = [name for name, _ in split.trainable()]
    assert any(".layer.5." in n for n in names) and any(".layer.4." in n for n in names)
    assert not any(".layer.3." in n for n in names) and "classifier.weight" in names


@pytest.fixture(scope="module")
def top_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("top")
    return train(TrainParams(**TINY, max_steps=3), tmp / "candidate", tiny_settings(tmp)).model_dir


def test_a_top_layers_model_is_small_and_loads_merged_into_the_base(top_model: Path) -> None:
    card = read_card(top_model)
    assert card.params["adapter"] == "top" and f"{DELTA_DIR}/{DELTA_FILE}" in card.files
    assert not (top_model / "encoder").exists() and not (top_model / "checkpoint").exists()
    size = sum(p.stat().st_size for p in (top_model / DELTA_DIR).rglob("*"))
    assert size < 2.2 * 2**20  # one layer + pooler in int8: ~1.9 MB (fp32 would be ~7.7 MB)
    merged = cross_dir(top_model)
    assert merged is not None and (merged / "config.json").is_file()
    from safetensors.numpy import load_file

    weights = load_file(str(merged / "model.safetensors"))
    base = load_file(str(base_model_path() / "model.safetensors"))
    changed = "bert.encoder.layer.5.output.dense.weight"
    assert not np.allclose(weights[changed], base["encoder.layer.5.output.dense.weight"])
    kept = "bert.encoder.layer.4.output.dense.weight"
    assert np.array_equal(weights[kept], base["encoder.layer.4.output.dense.weight"])


def test_the_head_is_stored_whole_so_a_merge_never_depends_on_random_state(
    top_model: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.numpy import load_file

    tensors = load_file(str(top_model / DELTA_DIR / DELTA_FILE))
    assert "whole.classifier.weight" in tensors and "whole.classifier.bias" in tensors
    assert all(key.startswith("whole.") for key in tensors if ".classifier." in f".{key}")
    merged = []
    for seed in (1, 2):  # a new head is initialised at random when the base is loaded
        torch.manual_seed(seed)
        model = _cross_model(TrainParams(adapter="top"), str(base_model_path()), "cpu")
        merged.append(apply_delta(model, top_model / DELTA_DIR).state_dict())
    assert all(torch.equal(merged[0][name], merged[1][name]) for name in merged[0])

    head = np.ones((3, 384), np.float32)
    save_delta({"classifier.weight": head}, {"classifier.weight": head * 0}, tmp_path, {})
    with pytest.raises(ValueError, match="another base"):  # a delta over a random head is refused
        apply_delta(_cross_model(TrainParams(adapter="top"), str(base_model_path()), "cpu"), tmp_path)


def test_training_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tiny_settings(tmp_path)
    params = TrainParams(**TINY, epochs=2, max_steps=4, checkpoint_every=2)
    clean = train(params, tmp_path / "clean", settings).model_dir
    real_batch, calls = top_layers.StateCache.batch, []

    def crash_on_the_fourth_batch(self: top_layers.StateCache, idx: list[int]) -> tuple[Any, Any]:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the fault: a user's Ctrl-C mid-run
        return real_batch(self, idx)

    monkeypatch.setattr(top_layers.StateCache, "batch", crash_on_the_fourth_batch)
    with pytest.raises(KeyboardInterrupt):
        train(params, tmp_path / "resumed", settings)
    assert (tmp_path / "resumed" / "checkpoint" / "state.pt").is_file()
    monkeypatch.setattr(top_layers.StateCache, "batch", real_batch)
    calls.clear()
    resumed = train(params, tmp_path / "resumed", settings).model_dir

    def losses(folder: Path) -> list[float]:
        with open(folder / "loss.csv") as fh:
            return [float(row["loss"]) for row in csv.DictReader(fh)]

    assert len(losses(resumed)) == 4
    assert np.allclose(losses(resumed), losses(clean), atol=1e-4)
