"""Dev accuracy of a trained model on the fixed NLI dev pairs, and its ONNX export (checked by it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from freshrank.classify.encoder import Encoder, TorchEncoder
from freshrank.classify.models import NliHead, cross_dir
from freshrank.config import Settings
from freshrank.train.data import NliPair, load_pairs


def dev_pairs(nli_path: Path | str, limit: int | None = None) -> list[NliPair]:
    """The fixed three-way dev pairs of ``nli_path`` (the first ``limit``)."""
    return [p for p in load_pairs(nli_path, split="dev") if p.label < 3][:limit]


def dev_accuracy(
    model_dir: Path,
    nli_path: Path | str | None = None,
    *,
    onnx: bool = False,
    limit: int | None = None,
    settings: Settings | None = None,
) -> float:
    """Three-way accuracy on the fixed dev pairs (cross-encoder when present, else the bi-encoder head)."""
    settings = settings or Settings()
    pairs = dev_pairs(nli_path or settings.nli_path, limit)
    if not pairs:
        raise ValueError(f"no three-way dev pairs in {nli_path}")
    gold = np.array([p.label for p in pairs])
    predicted = _pair_logits(
        Path(model_dir), [(p.premise, p.hypothesis) for p in pairs], settings, onnx
    ).argmax(1)
    return float((predicted == gold).mean())


def _pair_logits(model_dir: Path, pairs: list[tuple[str, str]], settings: Settings, onnx: bool) -> np.ndarray:
    folder = cross_dir(model_dir)
    if folder is not None:
        from freshrank.classify.cross import TorchPairClassifier
        from freshrank.classify.onnx import OnnxPairClassifier

        cls = OnnxPairClassifier if onnx else TorchPairClassifier
        return np.asarray(cls(folder, settings.cache_dir).logits(pairs))
    if not (model_dir / "head.npz").exists():
        raise ValueError(f"{model_dir} has neither a cross-encoder nor an NLI head")
    encoder: Encoder
    if onnx:
        from freshrank.classify.onnx import OnnxEncoder

        encoder = OnnxEncoder(model_dir / "encoder", settings.cache_dir)
    else:
        encoder = TorchEncoder(model_dir / "encoder")
    u = encoder.encode([p for p, _ in pairs])
    v = encoder.encode([h for _, h in pairs])
    return NliHead.load(model_dir / "head.npz").logits(u, v)


def export_onnx(
    model_dir: Path,
    quantize: bool = True,
    nli_path: Path | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Export encoder and cross-encoder to ONNX (int8 when ``quantize``) into ``<model_dir>/onnx/``.

    Returns the dev accuracy of PyTorch fp32 and of ONNX, and the change in points.
    """
    from freshrank.classify.onnx import export_onnx_file

    model_dir = Path(model_dir)
    files: list[str] = []
    kind = "int8" if quantize else "fp32"
    (model_dir / "onnx").mkdir(parents=True, exist_ok=True)
    for sub, head in (("encoder", "hidden"), ("cross", "logits")):
        source = cross_dir(model_dir) if sub == "cross" else model_dir / sub  # a LoRA adapter: merged
        if source is not None and source.is_dir():
            target = model_dir / "onnx" / f"{sub}.{kind}.onnx"
            export_onnx_file(source, target, head=head, quantize=quantize)
            files.append(str(target.relative_to(model_dir)))
    result: dict[str, Any] = {"files": files, "quantized": quantize}
    torch_acc = dev_accuracy(model_dir, nli_path, onnx=False, settings=settings)
    onnx_acc = dev_accuracy(model_dir, nli_path, onnx=True, settings=settings)
    result.update(
        dev_accuracy_torch=torch_acc,
        dev_accuracy_onnx=onnx_acc,
        accuracy_change_points=round(100 * (onnx_acc - torch_acc), 2),
    )
    (model_dir / "onnx" / "export.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
