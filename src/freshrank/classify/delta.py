"""A cross-encoder's trained top layers kept as int8 deltas over the packaged base encoder (``cross-delta/``).

The champion trains whole transformer layers (not a low-rank adapter): its top layers, pooler and head.
Shipped as they are they would be 7.4 MB in fp16; as ``trained - base`` rounded to int8 with one fp32 scale
per output row they are 3.7 MB, and the rounding moves each weight by at most half a step of its row's
largest change (every figure in docs/models.md is of the rounded model). Weights that do not come from the
pretrained checkpoint (the new 3-way head) are stored whole, in fp32.
Reading and writing live together here so that the format has one definition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

DELTA_FILE = "top_layers.safetensors"
DELTA_CONFIG = "delta.json"
FORMAT = "int8-row-delta/1"
_WHOLE = "whole."  # stored whole (the base has no such weight)
_DELTA = "delta."  # 1-D deltas (biases, layer norms), fp32
_INT8 = "int8."  # 2-D deltas, int8 rows ...
_SCALE = "scale."  # ... and each row's fp32 scale


def quantize_rows(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``delta ~ q * scale[:, None]``."""
    peak = np.abs(delta).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(delta / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def save_delta(
    trained: dict[str, np.ndarray], base: dict[str, np.ndarray], folder: Path, info: dict[str, Any]
) -> Path:
    """Write ``trained`` (name -> fp32 array) as deltas over ``base`` into ``folder``."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for name, value in sorted(trained.items()):
        value = np.asarray(value, dtype=np.float32)
        if name not in base:
            tensors[_WHOLE + name] = value
        elif value.ndim == 2:
            tensors[_INT8 + name], tensors[_SCALE + name] = quantize_rows(value - base[name])
        else:
            tensors[_DELTA + name] = (value - base[name]).astype(np.float32)
    save_file(tensors, str(folder / DELTA_FILE))
    config = json.dumps({"format": FORMAT, **info}, indent=2, sort_keys=True)
    (folder / DELTA_CONFIG).write_text(config + "\n")
    return folder


def load_delta(folder: Path, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The trained weights (name -> fp32 array) that ``folder`` holds over ``base``."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    info = json.loads((folder / DELTA_CONFIG).read_text())
    if info.get("format") != FORMAT:
        raise ValueError(f"{folder}: unknown delta format {info.get('format')!r} (expected {FORMAT})")
    tensors = load_file(str(folder / DELTA_FILE))
    out: dict[str, np.ndarray] = {}
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        if kind + "." == _WHOLE:
            out[name] = value.astype(np.float32)
        elif kind + "." == _DELTA:
            out[name] = _base(base, name) + value
        elif kind + "." == _INT8:
            scale = tensors[_SCALE + name]
            out[name] = _base(base, name) + value.astype(np.float32) * scale[:, None]
        elif kind + "." != _SCALE:
            raise ValueError(f"{folder}: unexpected tensor {key!r}")
    return out


def _base(base: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in base:
        raise ValueError(f"the base encoder has no weight {name!r}: the delta is for another base")
    return base[name].astype(np.float32)


def pretrained_state(model: Any) -> dict[str, np.ndarray]:
    """The weights ``model`` took from its pretrained checkpoint: its encoder's, not a new head's.

    A new head is initialised at random when the model is built, so a delta over it would depend on the
    random state of whoever loads it: heads are always stored whole.
    """
    prefix = f"{model.base_model_prefix}."
    return numpy_state((name, t) for name, t in model.state_dict().items() if name.startswith(prefix))


def apply_delta(model: Any, folder: Path) -> Any:
    """Load ``folder``'s trained weights into ``model`` (a torch module holding the base's weights)."""
    import torch

    state = model.state_dict()
    trained = load_delta(folder, pretrained_state(model))
    shapes = [(name, state[name].shape, value.shape) for name, value in trained.items() if name in state]
    wrong = [name for name, want, got in shapes if tuple(want) != got]
    missing = sorted(set(trained) - set(state))
    if wrong or missing:
        raise ValueError(f"{folder}: weights that do not fit the model: {(wrong + missing)[:5]}")
    model.load_state_dict({name: torch.from_numpy(value) for name, value in trained.items()}, strict=False)
    return model


def numpy_state(named: Iterable[tuple[str, Any]]) -> dict[str, np.ndarray]:
    """name -> fp32 numpy copy, from torch ``named_parameters()`` / ``state_dict().items()``."""
    return {name: tensor.detach().float().cpu().numpy().copy() for name, tensor in named}
