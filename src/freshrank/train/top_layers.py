"""The CPU recipe of the champion: a cross-encoder whose lower layers stay frozen and are run once.

The token states entering the top ``top_layers`` layers are computed once per training pair (fp16, in
memory), so an optimiser step runs only those layers, the pooler and the head, forward and backward: on 2 CPU
cores about 0.35 s per step of 32 pairs, three times more pairs per minute than a full pass. The trained
weights are saved as int8 deltas over the base (``freshrank.classify.delta``), the form that ships.
Chosen by measurement against LoRA, a trained label tower and late interaction: docs/models.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from freshrank.classify.card import DELTA_DIR
from freshrank.classify.delta import numpy_state, pretrained_state, save_delta
from freshrank.train.data import NliPair
from freshrank.train.trainer import TrainParams, _Checkpoint, _cross_model, cross_loop, nli_loss, pair_inputs

log = logging.getLogger(__name__)


class SplitCrossEncoder:
    """A BERT-style sequence classifier cut in two: frozen ``lower`` states, trainable ``upper`` logits."""

    def __init__(self, model: Any, top_layers: int) -> None:
        self.model = model
        self.bert = model.base_model
        layers = len(self.bert.encoder.layer)
        if not 0 < top_layers <= layers:
            raise ValueError(f"top_layers must be between 1 and {layers}, not {top_layers}")
        self.first = layers - top_layers

    def trainable(self) -> list[tuple[str, Any]]:
        """The top layers, the pooler and the head: everything the recipe trains."""
        prefix = self.model.base_model_prefix
        upper = [f"{prefix}.encoder.layer.{i}." for i in range(self.first, len(self.bert.encoder.layer))]
        keep = (*upper, f"{prefix}.pooler.", "classifier.")
        return [(name, p) for name, p in self.model.named_parameters() if name.startswith(keep)]

    @staticmethod
    def _additive(mask: Any) -> Any:
        import torch

        return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min

    def lower(self, inputs: dict[str, Any]) -> Any:
        """Token states entering the first trained layer (no gradient)."""
        import torch

        with torch.inference_mode():
            hidden = self.bert.embeddings(
                input_ids=inputs["input_ids"], token_type_ids=inputs.get("token_type_ids")
            )
            return self._layers(hidden, inputs["attention_mask"], self.bert.encoder.layer[: self.first])

    def upper(self, hidden: Any, mask: Any) -> Any:
        """The 3-way logits from the states ``lower`` returned."""
        hidden = self._layers(hidden, mask, self.bert.encoder.layer[self.first :])
        return self.model.classifier(self.model.dropout(self.bert.pooler(hidden)))

    def _layers(self, hidden: Any, mask: Any, layers: Sequence[Any]) -> Any:
        additive = self._additive(mask)
        for layer in layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden


class StateCache:
    """Every pair's lower token states in one preallocated fp16 block (pairs x max_tokens x hidden).

    One block, not a tensor per pair: 35,712 pairs take 2.2 GB, where as many small tensors took 9 GB of
    fragmented heap.
    """

    def __init__(self, count: int, tokens: int, hidden: int, device: str) -> None:
        import torch

        self.states = torch.zeros((count, tokens, hidden), dtype=torch.float16, device=device)
        self.lengths = torch.zeros(count, dtype=torch.long, device=device)

    def put(self, start: int, hidden: Any, mask: Any) -> None:
        end, width = start + len(hidden), hidden.shape[1]
        self.states[start:end, :width] = hidden.half()
        self.lengths[start:end] = mask.sum(1)

    def batch(self, idx: Sequence[int]) -> tuple[Any, Any]:
        """The states of pairs ``idx`` (fp32, cut to the longest) and their attention mask."""
        import torch

        rows = torch.as_tensor(list(idx), device=self.states.device)
        lengths = self.lengths[rows]
        width = int(lengths.max())
        mask = (torch.arange(width, device=rows.device)[None, :] < lengths[:, None]).long()
        return self.states[rows, :width].float(), mask


def _cache_states(
    split: SplitCrossEncoder, tokenizer: Any, pairs: Sequence[NliPair], params: TrainParams, device: str
) -> StateCache:
    """Run the frozen lower layers once over every pair (progress in the log)."""
    hidden_size = int(split.model.config.hidden_size)
    cache = StateCache(len(pairs), params.max_tokens, hidden_size, device)
    started, chunk, every = time.perf_counter(), 64, max(64, len(pairs) // 20)
    for start in range(0, len(pairs), chunk):
        batch = pairs[start : start + chunk]
        inputs = pair_inputs(tokenizer, batch, params.max_tokens, device)
        cache.put(start, split.lower(inputs), inputs["attention_mask"])
        done = start + len(batch)
        if done // every != start // every or done == len(pairs):
            elapsed = time.perf_counter() - started
            log.info(
                "caching frozen layers: %d/%d pairs, %.0f s elapsed, ~%.0f s left",
                done,
                len(pairs),
                elapsed,
                elapsed / done * (len(pairs) - done),
            )
    return cache


def train_top_layers(
    params: TrainParams,
    pairs: Sequence[NliPair],
    source: str,
    out_dir: Path,
    device: str,
    loss_log: list[tuple[str, int, float]],
) -> int:
    """Train the top ``params.top_layers`` layers + pooler + head on cached lower states; save the delta."""
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(params.seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = _cross_model(params, source, device).eval()
    base = pretrained_state(model)
    split = SplitCrossEncoder(model, params.top_layers)
    states = _cache_states(split, tokenizer, pairs, params, device)
    named = split.trainable()
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [p.requires_grad_(True) for _, p in named]
    labels = torch.tensor([p.label for p in pairs], device=device)

    def loss_of(idx: list[int]) -> Any:
        hidden, mask = states.batch(idx)
        return nli_loss(split.upper(hidden, mask), labels[idx])

    total = cross_loop(
        params, model, trainable, len(pairs), out_dir, loss_log, "cross-encoder (top layers)", loss_of
    )
    info = {"top_layers": params.top_layers, "first_layer": split.first, "base_model": params.base_model}
    save_delta(numpy_state(named), base, out_dir / DELTA_DIR, info)
    _Checkpoint(out_dir / "checkpoint", params).clear()
    return total
