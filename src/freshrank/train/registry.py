"""Model registry, write side: register trained model directories, promote and roll back the champion.

The read side (versions, cards, the champion, loading) is ``freshrank.classify.registry``; this class adds
the writes that only training and the lifecycle make.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from freshrank.classify.registry import (
    CARD_FILE,
    CARD_MD,
    CHAMPION_FILE,
    EMBEDDING,
    MODEL_SUBDIR,
    ChampionEntry,
    ModelMetrics,
    RegistryCard,
    RegistryError,
    RegistryReader,
    model_version,
    now_iso,
)


def _write_atomic(path: Path, text: str) -> None:
    """Readers never see half a file: write a sibling temp file, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class Registry(RegistryReader):
    """Versioned models on disk; ``champion`` names the one that ``refresh`` and the server use."""

    def write_card(self, card: RegistryCard) -> None:
        folder = self.root / card.version
        _write_atomic(folder / CARD_FILE, json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n")
        _write_atomic(folder / CARD_MD, card.markdown())

    def register(
        self,
        model_dir: Path,
        *,
        model_type: str,
        base_model: str,
        data: str,
        data_hash: str,
        params: dict[str, Any],
        metrics: ModelMetrics,
        notes: str = "",
    ) -> RegistryCard:
        """Copy a trained model directory in under its content hash and write its card (idempotent)."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir() or not any(model_dir.iterdir()):
            raise RegistryError(f"model directory {model_dir} is missing or empty")
        version = model_version(model_dir)
        target = self.root / version / MODEL_SUBDIR
        if not target.is_dir():
            staging = self.root / f".staging-{version}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(model_dir, staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
        if self.has_card(version):  # same files registered before: keep its history, refresh metrics
            card = self.card(version)
            card.metrics = metrics
        else:
            card = RegistryCard(
                version=version,
                model_type=model_type,
                base_model=base_model,
                data=data,
                data_hash=data_hash,
                params=params,
                metrics=metrics,
                created=now_iso(),
                parent=self.champion(),
                notes=notes,
            )
        self.write_card(card)
        return card

    def remove(self, version: str) -> None:
        version = self.resolve(version)
        if version == EMBEDDING or self.is_shipped(version):
            raise RegistryError(f"{version} cannot be removed (built in)")
        if version in {entry.version for entry in self.history()}:
            raise RegistryError(f"{version} is or was champion; it stays for rollback")
        shutil.rmtree(self.root / version)

    def _save_champion(self, champion: str, history: list[ChampionEntry]) -> None:
        state = {"champion": champion, "history": [asdict(entry) for entry in history]}
        _write_atomic(self.root / CHAMPION_FILE, json.dumps(state, indent=2) + "\n")

    def set_champion(self, version: str, reason: str) -> ChampionEntry:
        version = self.resolve(version)
        history = self.history()
        if not history:  # remember where we started, so a rollback can return to it
            history.append(ChampionEntry(self.champion(), now_iso(), "initial champion"))
        entry = ChampionEntry(version, now_iso(), reason)
        history.append(entry)
        self._save_champion(version, history)
        return entry

    def rollback(self) -> ChampionEntry:
        """Make the previous champion current again; repeated rollbacks walk further back."""
        previous = self.previous_champion()
        current = self.champion()
        history = self.history()
        entry = ChampionEntry(previous, now_iso(), f"rollback from {current}")
        history.append(entry)
        self._save_champion(previous, history)
        return entry
