"""Search backend interface: text relevance plus a trend boost computed inside the engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from freshrank.catalog.models import Movie


@dataclass(frozen=True)
class SearchRequest:
    text: str = ""
    genre: str | None = None
    labels: tuple[str, ...] = ()  # trending labels whose scores boost the ranking
    model_version: str = ""
    limit: int = 10
    offset: int = 0
    boost_weight: float = 1.0
    # Per-label weights, aligned with ``labels`` (empty: 1.0 each); see ``search.weights``.
    label_weights: tuple[float, ...] = ()

    def weights(self) -> dict[str, float]:
        """Each label with its weight."""
        return dict(zip(self.labels, self.label_weights or (1.0,) * len(self.labels), strict=True))

    def __post_init__(self) -> None:
        # Each label boosts once and blanks never: de-duplicated here, so every backend sees the same set
        # (a repeated label keeps its first weight).
        if self.label_weights and len(self.label_weights) != len(self.labels):
            raise ValueError("label_weights must have one weight per label")
        kept: dict[str, float] = {}
        for label, weight in zip(self.labels, self.label_weights or (1.0,) * len(self.labels), strict=True):
            if label and label not in kept:
                kept[label] = float(weight)
        object.__setattr__(self, "labels", tuple(kept))
        if self.label_weights:
            object.__setattr__(self, "label_weights", tuple(kept.values()))


@dataclass(frozen=True)
class SearchHit:
    id: int
    title: str
    text_score: float
    trend_scores: dict[str, float]
    score: float
    release_year: int | None = None
    genres: tuple[str, ...] = ()
    overview: str = ""


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    total: int
    warnings: list[str] = field(default_factory=list)
    label_weights: dict[str, float] = field(default_factory=dict)  # the boost's weights (absent: 1.0)


@dataclass(frozen=True)
class ScoreEntry:
    """One stored (model version, label) and when its scores were written (epoch seconds)."""

    model_version: str
    label: str
    scored_at: float


class SearchBackend(Protocol):
    """SQLite FTS5 (embedded default), OpenSearch, Elasticsearch: one contract test suite for all three."""

    def index(self, movies: Iterable[Movie]) -> int:
        """Add or replace movies; returns how many were written."""
        ...

    def put_scores(self, model_version: str, label: str, scores: Mapping[int, float]) -> None:
        """Store one label's scores for one model version (all of them or none)."""
        ...

    def scored_labels(self, model_version: str) -> set[str]: ...

    def score_entries(self) -> list[ScoreEntry]:
        """Every stored (model version, label), for retention."""
        ...

    def delete_scores(self, model_version: str, label: str, batch: int = 2_000) -> int:
        """Delete one label's scores in small transactions (searches keep running); returns rows freed.

        The scores go first and the entry last, so an interrupted delete is finished by the next one.
        """
        ...

    def search(self, request: SearchRequest) -> SearchPage:
        """Ranked by text_score + boost_weight * sum(label weight * trend score); ties broken by id."""
        ...

    def count(self) -> int: ...
