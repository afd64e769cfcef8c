"""Cross-encoder NLI on PyTorch: the reference path for (premise, hypothesis) logits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class TorchPairClassifier:
    """AutoModelForSequenceClassification logits, batched, on CUDA when present."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path | None = None,
        device: str | None = None,
        *,
        max_tokens: int = 256,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.max_tokens = max_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        self.model: Any = (
            AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(self.device).eval()
        )

    def logits(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32) -> np.ndarray:
        import torch

        chunks: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                batch = pairs[start : start + batch_size]
                inputs = self.tokenizer(
                    [p for p, _ in batch],
                    [h for _, h in batch],
                    truncation=True,
                    max_length=self.max_tokens,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                chunks.append(self.model(**inputs).logits.float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 3), dtype=np.float32)
