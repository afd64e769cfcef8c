"""Model registry, read side: versioned model directories with cards, and the ``champion`` with history.

Layout under ``settings.resolved_registry_dir``::

    <version>/model/          the model files (what ``load_model_dir`` reads); version = their content hash
    <version>/card.json       machine-readable model card
    <version>/model_card.md   the same card for people
    embedding/card.json       the embedding classifier (fallback champion): its metrics only
    champion.json             {"champion": version, "history": [{version, at, reason}, ...]}

Training writes it (``freshrank.train.registry.Registry``: register, promote, roll back); everything that
serves or scores only reads it, through this module.

The shipped champion (``freshrank.classify.shipped``, package data) is a version of every registry without
being copied into it: the initial champion of a fresh registry, rolled back to like any other.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from freshrank.classify.card import model_version as card_version
from freshrank.classify.shipped import ShippedModel, shipped_champion

if TYPE_CHECKING:
    from freshrank.classify.base import Classifier
    from freshrank.config import Settings

log = logging.getLogger(__name__)

EMBEDDING = "embedding"
CHAMPION = "champion"
CHAMPION_FILE = "champion.json"
CARD_FILE = "card.json"
CARD_MD = "model_card.md"
MODEL_SUBDIR = "model"


class LifecycleError(Exception):
    """A lifecycle step that cannot go on (no judgments, a model that fails to load, ...)."""


class RegistryError(LifecycleError):
    """A version that does not exist, an ambiguous prefix, nothing to roll back to."""


@dataclass
class ModelMetrics:
    """What the gate compares: mean zero-shot nDCG@10 on the judgments, and NLI dev accuracy."""

    ndcg_at_10: float | None = None
    dev_accuracy: float | None = None
    per_query: dict[str, float] = field(default_factory=dict)
    judgments_hash: str = ""  # which judgments the nDCG was measured on
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetrics:
        known = {
            k: data[k]
            for k in ("ndcg_at_10", "dev_accuracy", "per_query", "judgments_hash", "extra")
            if k in data
        }
        return cls(**known)


@dataclass
class RegistryCard:
    """The registry's record of a version: where it came from, how good it is, its parent champion.

    The model directory's own card (how to load and score it) is ``freshrank.classify.card.ModelCard``.
    """

    version: str
    model_type: str
    base_model: str
    data: str
    data_hash: str
    params: dict[str, Any]
    metrics: ModelMetrics
    created: str
    parent: str  # the champion when this model was registered
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegistryCard:
        return cls(
            version=data["version"],
            model_type=data.get("model_type", ""),
            base_model=data.get("base_model", ""),
            data=data.get("data", ""),
            data_hash=data.get("data_hash", ""),
            params=dict(data.get("params", {})),
            metrics=ModelMetrics.from_dict(data.get("metrics", {})),
            created=data.get("created", ""),
            parent=data.get("parent", ""),
            notes=data.get("notes", ""),
        )

    def markdown(self) -> str:
        m = self.metrics
        lines = [
            f"# Model {self.version}",
            "",
            f"- type: `{self.model_type}`",
            f"- base model: `{self.base_model}`",
            f"- training data: `{self.data}` (sha256 `{self.data_hash}`)",
            f"- created: {self.created}",
            f"- parent champion: `{self.parent}`",
            "",
            "## Metrics",
            "",
            f"- mean zero-shot nDCG@10: {_fmt(m.ndcg_at_10)} (judgments `{m.judgments_hash}`)",
            f"- NLI dev accuracy: {_fmt(m.dev_accuracy)}",
        ]
        lines += [f"- {query}: nDCG@10 {value:.4f}" for query, value in sorted(m.per_query.items())]
        lines += [f"- {key}: {value}" for key, value in sorted(m.extra.items())]
        lines += [
            "",
            "## Parameters",
            "",
            "```json",
            json.dumps(self.params, indent=2, sort_keys=True),
            "```",
        ]
        if self.notes:
            lines += ["", self.notes]
        return "\n".join(lines) + "\n"


@dataclass
class ChampionEntry:
    version: str
    at: str
    reason: str


def model_version(model_dir: Path) -> str:
    """The card's stamped version (else ``<type>-<content hash>``): the id the loaded classifier reports."""
    try:
        return card_version(model_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise RegistryError(f"{model_dir} is not a freshrank model directory: {exc}") from exc


def shipped_card(shipped: ShippedModel) -> RegistryCard:
    """The registry card of the packaged champion, from the metrics its own card records."""
    card = shipped.card
    metrics = card.metrics
    return RegistryCard(
        version=shipped.version,
        model_type=card.type,
        base_model=card.base_model,
        data=str(metrics.get("data", "")),
        data_hash=str(metrics.get("data_hash", "")),
        params=dict(card.params),
        metrics=ModelMetrics.from_dict(metrics),
        created=card.created,
        parent="",
        notes=f"Shipped with freshrank (package data: {shipped.model_dir}).",
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def now_iso() -> str:
    """UTC time to the microsecond, so that versions registered in the same second keep their order."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RegistryReader:
    """The read side of the registry: versions, cards, the champion, and loading a version."""

    def __init__(self, root: Path, shipped: ShippedModel | None = None) -> None:
        self.root = Path(root)
        self.shipped = shipped

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The registry of the settings' state dir, with the packaged champion (when usable)."""
        classifier = settings.classifier
        shipped = shipped_champion(classifier.shipped_model) if classifier.shipped else None
        return cls(settings.resolved_registry_dir, shipped)

    def is_shipped(self, version: str) -> bool:
        return self.shipped is not None and version == self.shipped.version

    # Versions ------------------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Registered model versions, oldest first (the embedding baseline is not one of them)."""
        found = []
        if self.root.is_dir():
            found = [
                p.name
                for p in self.root.iterdir()
                if (p / CARD_FILE).is_file() and (p / MODEL_SUBDIR).is_dir()
            ]
        if self.shipped is not None and self.shipped.version not in found:
            found.append(self.shipped.version)
        return sorted(found, key=lambda v: (self.card(v).created, v))

    def resolve(self, name: str) -> str:
        """``champion``, ``embedding``, a version id or a unique prefix of one (at least 4 characters)."""
        if name == CHAMPION:
            return self.champion()
        if name == EMBEDDING:
            return EMBEDDING
        versions = self.versions()
        if name in versions:
            return name
        matches = [v for v in versions if len(name) >= 4 and v.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise RegistryError(f"version prefix {name!r} is ambiguous: {', '.join(matches)}")
        known = ", ".join(versions) or "none registered"
        raise RegistryError(f"no model version {name!r} in {self.root} (known: {known})")

    def model_dir(self, version: str) -> Path:
        version = self.resolve(version)
        folder = self.root / version / MODEL_SUBDIR
        if self.shipped is not None and self.is_shipped(version) and not folder.is_dir():
            return self.shipped.model_dir
        return folder

    def card(self, version: str) -> RegistryCard:
        path = self.root / version / CARD_FILE
        if not path.is_file() and self.shipped is not None and self.is_shipped(version):
            return shipped_card(self.shipped)  # re-measured metrics, once written, are read from the file
        if not path.is_file():
            raise RegistryError(f"no model card for {version!r} in {self.root}")
        return RegistryCard.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def has_card(self, version: str) -> bool:
        return (self.root / version / CARD_FILE).is_file()

    # Champion ------------------------------------------------------------------------------------

    def _champion_state(self) -> dict[str, Any]:
        path = self.root / CHAMPION_FILE
        if not path.is_file():
            return {"champion": self.shipped.version if self.shipped else EMBEDDING, "history": []}
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def champion(self) -> str:
        """The promoted version; until something is promoted, the shipped champion (else the embedding)."""
        return str(self._champion_state()["champion"])

    def history(self) -> list[ChampionEntry]:
        """Promotions and rollbacks, oldest first."""
        return [ChampionEntry(**entry) for entry in self._champion_state()["history"]]

    def previous_champion(self) -> str:
        """The champion before the current one (what ``rollback`` returns to)."""
        stack = self._promotion_stack()
        if len(stack) < 2:
            raise RegistryError("nothing to roll back to: no earlier champion")
        return stack[-2]

    def _promotion_stack(self) -> list[str]:
        """Champions in force, oldest first, with rolled-back promotions taken off."""
        stack: list[str] = []
        for entry in self.history():
            if entry.reason.startswith("rollback") and stack:
                stack.pop()
                if not stack or stack[-1] != entry.version:
                    stack.append(entry.version)
            else:
                stack.append(entry.version)
        return stack or [self.champion()]

    # Loading -------------------------------------------------------------------------------------

    def load(self, name: str, settings: Settings) -> Classifier:
        """A ready-to-fit classifier for ``champion``, ``embedding`` or a version (prefix).

        A champion that is gone (e.g. the shipped model of an earlier install) falls back to the embedding
        classifier with a warning; the champion pointer is left as it is.
        """
        try:
            version = self.resolve(name)
        except RegistryError as exc:
            if name != CHAMPION:
                raise
            log.warning("the champion cannot be loaded (%s): using the embedding classifier", exc)
            version = EMBEDDING
        if version == EMBEDDING:
            from freshrank.classify.embedding import EmbeddingClassifier

            return EmbeddingClassifier(cache_dir=settings.cache_dir)
        from freshrank.classify.models import load_model_dir

        return load_model_dir(self.model_dir(version), settings)
