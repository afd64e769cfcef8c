"""Classification speed, measured in one run against the baselines (issue 4, item 5).

* ``encode_speedup_vs_torch_fp32``: freshrank's ONNX Runtime int8 encoder versus sentence-transformers on
  PyTorch fp32, on the same ``ENCODE_SUBSET`` catalogue documents (a fixed subset keeps the bench to minutes
  on 2 cores; both sides encode the same texts with the same batch size and token limit).
* ``new_label_seconds``: time to score one never-seen label over the whole encoded catalogue (the bi-encoder
  stage: encode the label, one matrix product, standardise), median of ``NEW_LABELS`` labels.
* ``cross_pairs_per_s`` versus ``hf_pipeline_pairs_per_s``: (movie, label) pairs per second of freshrank's
  ONNX cross-encoder and of the transformers ``zero-shot-classification`` pipeline (PyTorch fp32,
  ``multi_label=True``, the same template) with the same cross-encoder weights; plus the time to re-score
  the top ``rerank_top_k`` candidates of one label.

The cross-encoder is the champion's when it has one; otherwise the base encoder with an untrained 3-way head
(same architecture, so the same speed; its scores are meaningless and not used).
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.console import err

log = logging.getLogger(__name__)

ENCODE_SUBSET = 1000
ENCODE_REPEATS = 3
TORCH_BATCH = 32  # sentence-transformers' default batch size
CROSS_DOCS = 48
CROSS_LABELS = ("family holidays", "space travel", "revenge")
NEW_LABELS = ("shark week", "time loop", "haunted lighthouse", "robot uprising", "heist gone wrong")
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def _catalogue(settings: Settings) -> list[Movie]:
    from freshrank.catalog.loader import load_catalog

    return load_catalog(settings.movies_path).movies


def bench_encode(texts: list[str], settings: Settings) -> dict[str, Any]:
    """Same texts through PyTorch fp32 (sentence-transformers) and freshrank's ONNX int8 encoder.

    Each side runs ``ENCODE_REPEATS`` times, alternating, and keeps its best time: on a shared box the
    best run is the one least disturbed by other tenants, for both sides alike.
    """
    from freshrank.classify.encoder import TorchEncoder
    from freshrank.classify.onnx import DEFAULT_BATCH, OnnxEncoder

    torch_encoder = TorchEncoder()
    onnx_encoder = OnnxEncoder(cache_dir=settings.cache_dir)  # exported once, cached by content
    torch_encoder.encode(texts[:TORCH_BATCH], batch_size=TORCH_BATCH)
    onnx_encoder.encode(texts[:TORCH_BATCH])
    torch_s = onnx_s = float("inf")
    for _ in range(ENCODE_REPEATS):
        torch_vectors, seconds = _timed(torch_encoder.encode, texts, batch_size=TORCH_BATCH)
        torch_s = min(torch_s, seconds)
        onnx_vectors, seconds = _timed(onnx_encoder.encode, texts)
        onnx_s = min(onnx_s, seconds)
    agreement = float(np.mean(np.sum(torch_vectors * onnx_vectors, axis=1)))
    return {
        "encode_texts": len(texts),
        "torch_batch_size": TORCH_BATCH,
        "onnx_batch_size": DEFAULT_BATCH,
        "torch_fp32_docs_per_s": round(len(texts) / torch_s, 1),
        "onnx_int8_docs_per_s": round(len(texts) / onnx_s, 1),
        "encode_speedup_vs_torch_fp32": round(torch_s / onnx_s, 2),
        "onnx_vs_torch_mean_cosine": round(agreement, 4),
    }


def bench_new_label(movies: list[Movie], settings: Settings) -> dict[str, Any]:
    """Encode the whole catalogue once (cached), then time one new label over all of it."""
    from freshrank.classify.embedding import EmbeddingClassifier
    from freshrank.classify.onnx import OnnxEncoder

    encoder: Any = OnnxEncoder(cache_dir=settings.cache_dir)  # the Encoder protocol, dim read-only
    classifier = EmbeddingClassifier(encoder, cache_dir=settings.cache_dir)
    _, fit_s = _timed(classifier.fit, movies)
    classifier.score(["warm up"])
    times = [_timed(classifier.score, [label])[1] for label in NEW_LABELS]
    return {
        "catalog_size": len(movies),
        "catalog_fit_seconds": round(fit_s, 1),  # encoding, or loading the cached encodings
        "new_label_seconds": round(statistics.median(times), 4),
    }


def cross_encoder_dir(settings: Settings) -> tuple[Path, str]:
    """The champion's cross-encoder, else an untrained head on the base encoder (same speed)."""
    from freshrank.classify.registry import EMBEDDING, RegistryReader

    registry = RegistryReader.from_settings(settings)
    champion = registry.champion()
    if champion != EMBEDDING:
        cross = registry.model_dir(champion) / "cross"
        if cross.is_dir():
            return cross, f"champion {champion}"
    target = settings.cache_dir / "bench-cross-encoder"
    if not (target / "config.json").is_file():
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from freshrank.classify.encoder import base_model_path

        base = str(base_model_path())
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=3, id2label=NLI_LABELS, label2id={v: k for k, v in NLI_LABELS.items()}
        )
        model.save_pretrained(str(target))
        AutoTokenizer.from_pretrained(base).save_pretrained(str(target))
    return target, "untrained 3-way head on all-MiniLM-L6-v2 (speed only)"


def bench_cross(movies: list[Movie], settings: Settings) -> dict[str, Any]:
    """Pairs/s of freshrank's ONNX cross-encoder versus the transformers zero-shot pipeline, same weights."""
    from transformers import pipeline

    from freshrank.classify.onnx import OnnxPairClassifier

    cross_dir, which = cross_encoder_dir(settings)
    template = settings.classifier.template
    docs = [m.document for m in movies[:CROSS_DOCS]]
    pairs = [(doc, template.format(label=label)) for doc in docs for label in CROSS_LABELS]
    ours = OnnxPairClassifier(cross_dir, settings.cache_dir, quantize=False)  # as the product runs it
    ours.logits(pairs[:8])
    _, ours_s = _timed(ours.logits, pairs)
    k = settings.classifier.rerank_top_k
    shortlist = [(m.document, template.format(label=NEW_LABELS[0])) for m in movies[:k]]
    _, rerank_s = _timed(ours.logits, shortlist)

    hf = pipeline("zero-shot-classification", model=str(cross_dir), device="cpu")
    hf_template = template.replace("{label}", "{}")  # the pipeline formats its template positionally
    hf(docs[0], candidate_labels=list(CROSS_LABELS), hypothesis_template=hf_template, multi_label=True)
    _, hf_s = _timed(
        hf, docs, candidate_labels=list(CROSS_LABELS), hypothesis_template=hf_template, multi_label=True
    )
    return {
        "cross_encoder": which,
        "cross_pairs": len(pairs),
        "cross_pairs_per_s": round(len(pairs) / ours_s, 1),
        "hf_pipeline_pairs_per_s": round(len(pairs) / hf_s, 1),
        "cross_speedup_vs_hf_pipeline": round(hf_s / ours_s, 2),
        "cross_rerank_k": k,
        "cross_rerank_seconds": round(rerank_s, 3),
    }


def _shown(section: dict[str, Any]) -> dict[str, Any]:
    """Print a section's figures as soon as it is measured (a long run still leaves partial results)."""
    err.print(", ".join(f"{key}={value}" for key, value in section.items()))
    return section


def run() -> dict[str, Any]:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    movies = _catalogue(settings)
    figures: dict[str, Any] = {}
    err.print(f"encode: {ENCODE_SUBSET} of {len(movies)} documents, torch fp32 vs ONNX int8")
    figures.update(_shown(bench_encode([m.document for m in movies[:ENCODE_SUBSET]], settings)))
    err.print(f"new label over the whole catalogue ({len(movies)} movies)")
    figures.update(_shown(bench_new_label(movies, settings)))
    err.print("cross-encoder: freshrank ONNX vs transformers zero-shot-classification pipeline")
    figures.update(_shown(bench_cross(movies, settings)))
    err.print(
        f"encode speed-up vs torch fp32: {figures['encode_speedup_vs_torch_fp32']}x; "
        f"new label: {figures['new_label_seconds']} s over {figures['catalog_size']} movies; "
        f"cross-encoder {figures['cross_pairs_per_s']} pairs/s "
        f"vs pipeline {figures['hf_pipeline_pairs_per_s']} "
        f"({figures['cross_speedup_vs_hf_pipeline']}x)"
    )
    return figures
