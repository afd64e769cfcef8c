"""Trained NLI zero-shot classifiers, loaded from a self-describing model directory.

A model directory (written by ``freshrank.train.trainer.train``) holds::

    freshrank-model.json   ModelCard: type, template, signal weights, calibration, training params
    encoder/               sentence encoder (sentence-transformers layout): first stage and bi-encoder
    head.npz               bi-encoder NLI head on [u, v, |u-v|, u*v] (3 classes: LABELS order)
    cross/                 cross-encoder (AutoModelForSequenceClassification, label2id names entailment)
    cross-adapter/         or: a LoRA adapter (peft) of that cross-encoder over the base encoder, merged on
                           first use into a machine-wide cache
    cross-delta/           or: its trained top layers as int8 deltas over the base (classify.delta), merged
                           the same way (the shipped champion is one, ~3.7 MB)
    metrics.json, loss.csv training figures

Every type scores a label the same way: signals computed from the label text (cosine of the encoder,
bi-encoder entailment, BM25 of the label words, pseudo-relevance feedback), each standardised over the
catalogue (absolute scores are not comparable across labels), summed with the card's weights; the
cross-encoder then re-scores the top ``rerank_top_k`` of that first stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from freshrank.catalog.models import Movie
from freshrank.classify.card import (
    ADAPTER_DIR,
    DELTA_DIR,
    LABELS,
    ModelLoadError,
    model_digest,
    model_version,
    read_card,
    small_cross_dir,
    verify_files,
)
from freshrank.classify.encoder import Encoder, TorchEncoder, base_model_path, cached_encode
from freshrank.classify.lexical import Bm25Index
from freshrank.config import Settings
from freshrank.labels import hashtag_to_label

log = logging.getLogger(__name__)

SIGNALS = ("cosine", "nli", "lexical", "prf", "cross")


def merged_cross_dir(model_dir: Path, version: str) -> Path:
    """The cross-encoder of a LoRA or top-layers model: merged into its base once, cached machine-wide."""
    import os

    from freshrank.classify.onnx import export_cache_dir

    target = export_cache_dir() / "merged" / version / "cross"
    if (target / "config.json").is_file():
        return target
    verify_files(model_dir)
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from freshrank.classify.delta import apply_delta

    base = model_dir / "encoder" if (model_dir / "encoder").is_dir() else base_model_path()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base),
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)},
        )
        if (model_dir / DELTA_DIR).is_dir():
            merged = apply_delta(model, model_dir / DELTA_DIR)
        else:
            merged = PeftModel.from_pretrained(model, str(model_dir / ADAPTER_DIR)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{model_dir}: cannot load the cross-encoder adapter: {exc}") from exc
    tmp = target.parent / f"tmp-{os.getpid()}"
    merged.save_pretrained(str(tmp))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(tmp))
    os.replace(tmp, target)
    return target


def cross_dir(model_dir: Path) -> Path | None:
    """The model's cross-encoder directory (merging a LoRA adapter first), or None when it has none."""
    model_dir = Path(model_dir)
    if (model_dir / "cross").is_dir():
        return model_dir / "cross"
    if small_cross_dir(model_dir) is not None:
        return merged_cross_dir(model_dir, model_version(model_dir))
    return None


def _standardise(values: np.ndarray, stats: tuple[float, float] | None = None) -> np.ndarray:
    mean, std = stats if stats is not None else (float(values.mean()), float(values.std()))
    return np.zeros_like(values) if std < 1e-9 else (values - mean) / std


def _log_odds_entailment(logits: np.ndarray) -> np.ndarray:
    """log P(entailment) - log P(not entailment), from 3-way logits in LABELS order."""
    others = np.logaddexp(logits[..., 1], logits[..., 2])
    return (logits[..., 0] - others).astype(np.float32)


def _unit_interval(z: np.ndarray) -> np.ndarray:
    """Standardised score to [0, 1]: about the top 1% of a catalogue lands above 0.5."""
    return (1.0 / (1.0 + np.exp(-2.0 * (np.clip(z, -30, 30) - 2.5)))).astype(np.float32)


class NliHead:
    """Bi-encoder head: logits = W [u, v, |u-v|, u*v] + b, evaluated in numpy (no torch at inference)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        dim = weight.shape[1] // 4
        self.w_u, self.w_v, self.w_diff, self.w_prod = (weight[:, i * dim : (i + 1) * dim] for i in range(4))
        self.bias = bias

    @classmethod
    def load(cls, path: Path) -> NliHead:
        data = np.load(path)
        return cls(data["weight"].astype(np.float32), data["bias"].astype(np.float32))

    def logits(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """u: (n, d) premises; v: (d,) one hypothesis, or (n, d) paired hypotheses."""
        return (
            u @ self.w_u.T
            + v @ self.w_v.T
            + np.abs(u - v) @ self.w_diff.T
            + (u * v) @ self.w_prod.T
            + self.bias
        )


class NliClassifier:
    """A trained model directory behind the ``Classifier`` protocol."""

    def __init__(
        self, model_dir: Path, settings: Settings | None = None, *, onnx: bool = True, name: str | None = None
    ) -> None:
        self.model_dir = Path(model_dir)
        self.settings = settings or Settings()
        self.card = read_card(self.model_dir)
        self.name = name or self.model_dir.name
        self.onnx = onnx
        self._version = self.card.version or f"{self.card.type}-{model_digest(self.model_dir)}"
        self._encoder: Encoder | None = None
        self._cross: Any = None
        self.head = (
            NliHead.load(self.model_dir / "head.npz") if (self.model_dir / "head.npz").exists() else None
        )
        self._docs = np.zeros((0, 0), dtype=np.float32)
        self._texts: list[str] = []
        self._bm25: Bm25Index | None = None

    @property
    def version(self) -> str:
        return self._version

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            path = self.model_dir / "encoder"
            if not path.is_dir():  # a LoRA cross-encoder's model: the first stage is the base encoder
                from freshrank.classify.onnx import OnnxEncoder

                # fp32, as the embedding baseline: the same export and cached catalogue vectors.
                self._encoder = OnnxEncoder(None, self.settings.cache_dir, quantize=False)
            elif self.onnx:
                from freshrank.classify.onnx import OnnxEncoder

                self._encoder = OnnxEncoder(path, self.settings.cache_dir)
            else:
                self._encoder = TorchEncoder(path)
        return self._encoder

    @property
    def cross(self) -> Any:
        if self._cross is None:
            folder = cross_dir(self.model_dir)
            if folder is None:
                return None
            from freshrank.classify.cross import TorchPairClassifier
            from freshrank.classify.onnx import OnnxPairClassifier

            if self.onnx:
                # fp32: int8 kept dev accuracy (-0.4 points) but cut shortlist nDCG@10 from 0.69 to 0.57.
                self._cross = OnnxPairClassifier(
                    folder, self.settings.cache_dir, quantize=False, max_tokens=self.cross_tokens
                )
            else:
                self._cross = TorchPairClassifier(
                    folder, self.settings.cache_dir, max_tokens=self.cross_tokens
                )
        return self._cross

    @property
    def cross_tokens(self) -> int:
        """Pairs are cut to the length the cross-encoder was trained on (the card's ``max_tokens``).

        Scoring longer overviews than it ever saw cost the champion 0.03 nDCG@10 (docs/models.md).
        """
        from freshrank.classify.onnx import MAX_TOKENS

        return min(int(self.card.params.get("max_tokens") or MAX_TOKENS), MAX_TOKENS)

    @property
    def weights(self) -> dict[str, float]:
        return {k: v for k, v in self.card.weights.items() if v and k in SIGNALS}

    @property
    def rerank_top_k(self) -> int:
        return self.card.rerank_top_k or self.settings.classifier.rerank_top_k

    # Label text -------------------------------------------------------------------------------------

    def label_text(self, label: str) -> str:
        """The words the model reads: the trend stage's own label function (labels pass through unchanged)."""
        raw = label.strip()[:200]
        return (hashtag_to_label(label) or raw) if self.card.label_text == "words" else raw

    def _hypotheses(self, labels: Sequence[str], template: str) -> list[str]:
        return [template.format(label=self.label_text(label)) for label in labels]

    # Classifier protocol ----------------------------------------------------------------------------

    def fit(self, movies: Sequence[Movie]) -> NliClassifier:
        self._texts = [m.document for m in movies]
        self._docs = cached_encode(
            self.encoder, self._texts, self.settings.cache_dir, show_progress=len(movies) > 1000
        )
        self._bm25 = Bm25Index(self._texts) if "lexical" in self.weights else None
        return self

    def score(self, labels: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(labels), len(self._texts)), dtype=np.float32)
        if not len(self._texts):
            return out
        for row, label in enumerate(labels):
            out[row] = self.signals(label).unit
        return out

    def predict(self, sequences: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        if not sequences or not labels:
            return np.zeros((len(sequences), len(labels)), dtype=np.float32)
        docs = self.encoder.encode(list(sequences))
        index = Bm25Index(list(sequences)) if "lexical" in self.weights else None
        out = np.zeros((len(sequences), len(labels)), dtype=np.float32)
        for col, label in enumerate(labels):
            out[:, col] = _unit_interval(self._predict_one(docs, list(sequences), index, label))
        return out

    # Signals ----------------------------------------------------------------------------------------

    def raw_signals(
        self, label: str, docs: np.ndarray | None = None, bm25: Bm25Index | None = None
    ) -> dict[str, np.ndarray]:
        """Unstandardised first-stage signals of one label over ``docs`` (default: the fitted catalogue)."""
        docs = self._docs if docs is None else docs
        weights = self.weights
        raw: dict[str, np.ndarray] = {}
        if "cosine" in weights or "prf" in weights:
            query = self.encoder.encode(self._hypotheses([label], self.card.cosine_template))[0]
            raw["cosine"] = docs @ query
        if "nli" in weights and self.head is not None:
            hypothesis = self.encoder.encode(self._hypotheses([label], self.card.template))[0]
            raw["nli"] = _log_odds_entailment(self.head.logits(docs, hypothesis))
        index = bm25 if bm25 is not None else self._bm25
        if "lexical" in weights and index is not None:
            raw["lexical"] = index.score(self.label_text(label))
        return raw

    def signals(self, label: str) -> Signals:
        raw = self.raw_signals(label)
        cross_fn = None
        if "cross" in self.weights and self.cross is not None:
            hypothesis = self._hypotheses([label], self.card.template)[0]

            def cross_fn(rows: np.ndarray) -> np.ndarray:
                return _log_odds_entailment(self.cross.logits([(self._texts[i], hypothesis) for i in rows]))

        return combine_signals(
            {k: _standardise(v) for k, v in raw.items()},
            self.weights,
            self._docs,
            prf_docs=self.card.prf_docs,
            top_k=self.rerank_top_k,
            cross_fn=cross_fn,
        )

    def _predict_one(
        self, docs: np.ndarray, texts: list[str], index: Bm25Index | None, label: str
    ) -> np.ndarray:
        """Free texts, standardised by this label's catalogue statistics when fitted, else the card's."""
        weights = self.weights
        raw = self.raw_signals(label, docs, index)
        reference = self.raw_signals(label) if len(self._texts) else {}
        total = np.zeros(len(texts), dtype=np.float32)
        for key, values in raw.items():
            if key in weights:
                ref = reference.get(key)
                stats = (
                    (float(ref.mean()), float(ref.std()))
                    if ref is not None
                    else self.card.calibration.get(key)
                )
                total += weights[key] * _standardise(values, stats or (0.0, 1.0))
        if "cross" in weights and self.cross is not None:
            hypothesis = self._hypotheses([label], self.card.template)[0]
            cross = _log_odds_entailment(self.cross.logits([(t, hypothesis) for t in texts]))
            total += weights["cross"] * _standardise(cross, self.card.calibration.get("cross", (0.0, 1.0)))
        # A weighted mean, so that a dominant signal (cross weight 1000) keeps its own scale, not saturation.
        used = [w for k, w in weights.items() if k in raw or (k == "cross" and self.cross is not None)]
        return total / max(sum(used), 1e-9)


def combine_signals(
    standard: dict[str, np.ndarray],
    weights: dict[str, float],
    docs: np.ndarray,
    *,
    prf_docs: int = 10,
    top_k: int = 100,
    cross_fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Signals:
    """Weighted sum of standardised signals, pseudo-relevance feedback, then cross-encoder re-scoring.

    PRF: the centroid of the first stage's top ``prf_docs`` documents is a second query (cosine, standardised)
    Re-scoring: the top ``top_k`` get standardised first-stage score + w_cross * standardised cross-encoder
    log-odds (standardised within the shortlist) and stay ranked above every document outside it.
    """
    n = len(docs)
    first = np.zeros(n, dtype=np.float32)
    for key, values in standard.items():
        first += weights.get(key, 0.0) * values
    standard = dict(standard)
    if weights.get("prf") and n:
        top = np.argsort(-first, kind="stable")[:prf_docs]
        centroid = docs[top].mean(axis=0)
        standard["prf"] = _standardise(docs @ (centroid / max(float(np.linalg.norm(centroid)), 1e-9)))
        first = (first + weights["prf"] * standard["prf"]).astype(np.float32)
    combined = first.copy()
    if weights.get("cross") and cross_fn is not None and n:
        shortlist = np.argsort(-first, kind="stable")[:top_k]
        cross = _standardise(np.asarray(cross_fn(shortlist), dtype=np.float32))
        # A weighted mean in standard units: ordering as first + w * cross, without values that saturate.
        blend = (_standardise(first[shortlist]) + weights["cross"] * cross) / (1.0 + weights["cross"])
        floor = float(np.delete(first, shortlist).max()) if n > len(shortlist) else 0.0
        combined[shortlist] = floor + 1.0 + blend - blend.min()
    return Signals(standard=standard, first_stage=first, combined=combined, unit=_rescale(combined))


def _rescale(values: np.ndarray) -> np.ndarray:
    """An affine map onto [0, 1]: the catalogue scores keep their shape, so calibration standardises once."""
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    if not high > low:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


class Signals(BaseModel):
    """One label's standardised signals over the catalogue and the scores they combine into."""

    model_config = {"arbitrary_types_allowed": True}

    standard: dict[str, np.ndarray]
    first_stage: np.ndarray
    combined: np.ndarray  # ranking score (unbounded)
    unit: np.ndarray  # ``combined`` mapped affinely onto [0, 1]: what ``score`` returns


def load_model_dir(path: Path, settings: Settings | None = None, *, onnx: bool = True) -> NliClassifier:
    """The ``Classifier`` for a model directory written by ``freshrank.train.trainer.train``."""
    return NliClassifier(Path(path), settings, onnx=onnx)
