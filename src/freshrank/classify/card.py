"""The model card of a model directory (``freshrank-model.json``): what a trained classifier is and its id.

A leaf of the classify stage: the classifier reads it to load a model, training writes and stamps it, the
registry reads the stamped version. No weights are hashed on load: the version is stamped once, when
training ends.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

CARD_FILE = "freshrank-model.json"
ADAPTER_DIR = "cross-adapter"
DELTA_DIR = "cross-delta"  # trained top layers as int8 deltas over the base (classify.delta)
_DERIVED = ("onnx/", "checkpoint/", ".")  # not part of a model's identity
ModelType = Literal["bi-encoder", "cross-encoder", "hybrid"]
# The NLI heads' output order (SNLI/MultiNLI convention).
LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")


class ModelCard(BaseModel):
    """The contents of ``freshrank-model.json``."""

    format: int = 1
    type: ModelType
    template: str = "This movie is about {label}."
    cosine_template: str = "{label}"
    label_text: Literal["words", "raw"] = "words"  # "words": hashtag split into words first
    weights: dict[str, float] = Field(default_factory=dict)
    rerank_top_k: int | None = None  # None: settings.classifier.rerank_top_k
    prf_docs: int = 10
    calibration: dict[str, tuple[float, float]] = Field(default_factory=dict)  # signal -> (mean, std)
    base_model: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    # Stamped when training ends: the version the classifier reports (no hashing of weights on load) and
    # the sha256 of each weight file (checked before an adapter is merged).
    version: str = ""
    files: dict[str, str] = Field(default_factory=dict)


def small_cross_dir(model_dir: Path) -> Path | None:
    """The cross-encoder's weights kept over the base (LoRA adapter or top-layer deltas), when it has them."""
    for name in (DELTA_DIR, ADAPTER_DIR):
        if (Path(model_dir) / name).is_dir():
            return Path(model_dir) / name
    return None


class ModelLoadError(ValueError):
    """A model directory that is missing files or whose weights do not match its card."""


def read_card(model_dir: Path) -> ModelCard:
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"not a freshrank model directory (no {CARD_FILE}): {model_dir}")
    return ModelCard.model_validate_json(path.read_text())


def write_card(model_dir: Path, card: ModelCard) -> None:
    (Path(model_dir) / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n")


def _weight_files(model_dir: Path) -> list[Path]:
    skip = (CARD_FILE, "metrics.json", "loss.csv", "model_card.md")
    return sorted(
        p
        for p in Path(model_dir).rglob("*")
        if p.is_file()
        and not p.relative_to(model_dir).as_posix().startswith(_DERIVED)
        and p.relative_to(model_dir).as_posix() not in skip
    )


def model_digest(model_dir: Path) -> str:
    """Content hash of the card and weights (ONNX exports and figures left out: they are derived)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        rel = file.relative_to(model_dir).as_posix()
        if rel.startswith(_DERIVED) or rel in ("metrics.json", "loss.csv"):
            continue
        digest.update(rel.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stamp_version(model_dir: Path, card: ModelCard) -> str:
    """Record the weight files' sha256 and the version id in the card (once, when training ends)."""
    model_dir = Path(model_dir)
    card.files = {p.relative_to(model_dir).as_posix(): _sha256(p) for p in _weight_files(model_dir)}
    recipe = card.model_dump(mode="json", exclude={"version", "files", "metrics", "created"})
    digest = hashlib.sha256(json.dumps([recipe, card.files], sort_keys=True).encode()).hexdigest()
    card.version = f"{card.type}-{digest[:12]}"
    write_card(model_dir, card)
    return card.version


def model_version(model_dir: Path) -> str:
    """The id a loaded classifier reports: the card's stamped version, else a content hash of the files."""
    card = read_card(model_dir)
    return card.version or f"{card.type}-{model_digest(model_dir)}"


def verify_files(model_dir: Path, card: ModelCard | None = None) -> None:
    """Raise ``ModelLoadError`` when a weight file the card lists is missing or differs from its sha256."""
    model_dir = Path(model_dir)
    card = card or read_card(model_dir)
    for rel, sha in card.files.items():
        path = model_dir / rel
        if not path.is_file():
            raise ModelLoadError(f"{model_dir}: weight file {rel} is missing")
        if _sha256(path) != sha:
            raise ModelLoadError(f"{model_dir}: weight file {rel} does not match its card (corrupt?)")
