"""The DVC 'ship' stage: a trained small model (LoRA or top-layer deltas) becomes package data with its
card, within the size limit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrank.classify.card import read_card, small_cross_dir, verify_files
from freshrank.classify.registry import LifecycleError
from freshrank.classify.shipped import shipped_champion
from freshrank.cli import app
from freshrank.train.ship import MODEL_CARD, ship_model
from freshrank.train.trainer import TrainParams, train
from tests.train.lifecycle_fixtures import tiny_settings

METRICS = {
    "ndcg_at_10": 0.61,
    "dev_accuracy": 0.4,
    "per_query": {"#christmas": 0.6},
    "judgments_hash": "j1",
}


@pytest.fixture(scope="module", params=["lora", "top"])
def lora_model(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A real small model (LoRA adapter, or top-layer deltas), trained for two steps on the top layer."""
    tmp = tmp_path_factory.mktemp(request.param)
    params = TrainParams(
        model_type="hybrid",
        adapter=request.param,
        top_layers=1,
        lora_layers=1,
        lora_r=4,
        max_pairs=16,
        catalog_pairs=8,
        max_steps=2,
        batch_size=8,
        max_tokens=32,
        dev_pairs=8,
    )
    return train(params, tmp / "candidate", tiny_settings(tmp)).model_dir


def write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_ship_packages_the_adapter_with_its_metrics_and_card(lora_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"premise": "a", "hypothesis": "b", "label": "entailment"}\n')
    out = tmp_path / "champion"
    result = ship_model(lora_model, out, write(tmp_path / "metrics.json", METRICS), data)
    card = read_card(out)
    assert result["version"] == card.version and card.version.startswith("hybrid-")
    assert card.metrics["ndcg_at_10"] == 0.61 and card.metrics["per_query"] == {"#christmas": 0.6}
    assert card.metrics["data_hash"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert card.params["adapter"] in ("lora", "top") and card.params["seed"] == 0
    assert small_cross_dir(out) is not None and small_cross_dir(out).parent == out  # type: ignore[union-attr]
    assert not (out / "cross").exists() and not (out / "checkpoint").exists()
    verify_files(out, card)  # every weight file matches the sha256 in the card
    assert result["bytes"] <= 4 * 2**20
    text = (out / MODEL_CARD).read_text()
    assert card.version in text and "0.61" in text and card.metrics["data_hash"] in text
    shipped = shipped_champion(out)
    assert shipped is not None and shipped.version == card.version


def test_ship_refuses_full_weights_and_oversize_models(lora_model: Path, tmp_path: Path) -> None:
    metrics = write(tmp_path / "metrics.json", METRICS)
    no_adapter = tmp_path / "bi"
    no_adapter.mkdir()
    (no_adapter / "freshrank-model.json").write_text((lora_model / "freshrank-model.json").read_text())
    with pytest.raises(LifecycleError, match="only models kept over the base"):
        ship_model(no_adapter, tmp_path / "out", metrics)

    (lora_model / "extra.bin").write_bytes(b"\0" * (5 * 2**20))
    try:
        out = tmp_path / "out"
        out.mkdir()
        (out / "keep").write_text("the previous champion")
        with pytest.raises(LifecycleError, match="over the 4 MiB limit"):
            ship_model(lora_model, out, metrics)
        assert (out / "keep").read_text() == "the previous champion"  # nothing lost
        assert not list(tmp_path.glob(".out-*"))  # no staging left behind
    finally:
        (lora_model / "extra.bin").unlink()


def test_ship_command_json_and_exit_code(lora_model: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    metrics = write(tmp_path / "metrics.json", METRICS)
    out = tmp_path / "champion"
    done = runner.invoke(
        app, ["models", "ship", str(lora_model), "--metrics", str(metrics), "--out", str(out), "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["version"] == read_card(out).version
    bad = runner.invoke(app, ["models", "ship", str(tmp_path / "nowhere"), "--metrics", str(metrics)])
    assert bad.exit_code != 0
