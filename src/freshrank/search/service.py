"""SearchService: the one facade that the CLI, the web API and the evaluation rank through.

It resolves hashtags to labels, reads the current trends, scores labels the current model has not seen (on
the fly), and degrades instead of failing: an unreachable trend store means the last known trends (or no
boost), an unavailable classifier means the boost comes from scores already stored.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from freshrank.catalog.loader import CatalogLoad, load_catalog
from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.config import Settings
from freshrank.monitor.metrics import COMPONENT_HEALTHY
from freshrank.search import open_backend
from freshrank.search.base import SearchBackend, SearchPage, SearchRequest
from freshrank.search.refresh import Calibration, Progress, RefreshReport, refresh, scores_version
from freshrank.trends.base import Trend, TrendStore

log = logging.getLogger(__name__)

STATE_FILE = "loop_state.json"
CLASSIFIER_RETRY_SECONDS = 60.0  # a classifier that failed to load is tried again after this long


@runtime_checkable
class MovieSource(Protocol):
    """A backend that can list what it indexed (the classifier fits on exactly that catalogue)."""

    def movies(self) -> Iterator[Movie]: ...


@runtime_checkable
class VersionedScores(Protocol):
    """A backend that knows which model versions have stored scores, newest first."""

    def model_versions(self) -> list[str]: ...


@dataclass
class LoadReport:
    """``freshrank load``: what the file held and what the backend now holds."""

    catalog: CatalogLoad
    indexed: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.catalog.summary(), "indexed": self.indexed, "total_in_index": self.total}


def hashtag_label(hashtag: str) -> str:
    """The classifier text of a hashtag (``#SharkWeek`` → ``shark week``), by the trend stage's rules."""
    from freshrank.trends.labels import hashtag_to_label

    return hashtag_to_label(hashtag)


class SearchService:
    """Search, refresh and health over one backend, one trend store and one (lazily loaded) classifier."""

    def __init__(
        self,
        settings: Settings,
        backend: SearchBackend,
        trend_store: Callable[[], TrendStore] | None = None,
        classifier: Callable[[], Classifier] | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self._open_trend_store = trend_store or (lambda: _open_trend_store(settings))
        self._load_classifier = classifier or (lambda: _load_classifier(settings))
        self._trend_store: TrendStore | None = None
        self._classifier: Classifier | None = None
        self._classifier_error = ""
        self._classifier_failed_at = 0.0
        self._fitted_ids: list[int] | None = None
        self._last_snapshot: list[dict[str, Any]] | None = None
        self._lock = threading.RLock()
        self._state_path = settings.state_dir / STATE_FILE
        self.calibration = Calibration.named(settings.search.calibration, settings.search.calibration_z)

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchService:
        backend = open_backend(settings.resolved_search_url, field_weights=settings.search.field_weights)
        return cls(settings, backend)

    # Catalogue ---------------------------------------------------------------------------------------

    def load(self, path: Path | str | None = None) -> LoadReport:
        """Validate a catalogue file and index its good rows (bad rows are reported, never fatal)."""
        catalog = load_catalog(path or self.settings.movies_path)
        indexed = self.backend.index(catalog.movies)
        with self._lock:
            self._fitted_ids = None  # the classifier must fit the new catalogue
        return LoadReport(catalog=catalog, indexed=indexed, total=self.backend.count())

    # Search ------------------------------------------------------------------------------------------

    def search(
        self,
        text: str = "",
        genre: str | None = None,
        hashtags: Sequence[str] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> SearchPage:
        """Rank by text + trend boost; ``hashtags=None`` means the current trends, ``[]`` means no boost."""
        warnings: list[str] = []
        labels = self.current_labels(warnings) if hashtags is None else self.labels_of(hashtags, warnings)
        version = self._version_for(labels, warnings) if labels else ""
        request = SearchRequest(
            text=text,
            genre=genre or None,
            labels=tuple(labels),
            model_version=version,
            limit=limit,
            offset=offset,
            boost_weight=self.settings.search.boost_weight,
        )
        page = self.backend.search(request)
        return SearchPage(hits=page.hits, total=page.total, warnings=warnings + page.warnings)

    def labels_of(self, hashtags: Sequence[str], warnings: list[str]) -> list[str]:
        """Distinct non-empty labels of ``hashtags`` in order; empty ones are reported and dropped."""
        labels: list[str] = []
        for hashtag in hashtags:
            label = hashtag_label(hashtag)
            if not label:
                warnings.append(f"hashtag {_shorten(hashtag)!r} has no words to classify; ignored")
            elif label not in labels:
                labels.append(label)
        return labels

    def current_trends(self, warnings: list[str]) -> list[Trend]:
        """The trend store's top N, or the last snapshot this service saw when the store is unreachable."""
        try:
            trends = self._store().top(self.settings.trends.top_n)
        except Exception as exc:  # any store failure (Redis down, file unreadable) degrades the boost only
            self._trend_store = None
            last = self._state().get("trends", [])
            note = "last known trends" if last else "no trend boost"
            warnings.append(f"trend store unavailable ({_shorten(str(exc))}): using {note}")
            return [_trend_of(row) for row in last]
        snapshot = [_trend_row(t) for t in trends]
        if snapshot != self._last_snapshot:
            self._last_snapshot = snapshot
            self._save_state(trends=snapshot)
        return trends

    def current_labels(self, warnings: list[str]) -> list[str]:
        return list(dict.fromkeys(t.label for t in self.current_trends(warnings) if t.label))

    def _version_for(self, labels: Sequence[str], warnings: list[str]) -> str:
        """The model version whose scores boost; labels it lacks are scored now when the classifier works."""
        classifier = self.classifier(warnings)
        if classifier is None:
            return self._stored_version(labels, warnings)
        version = scores_version(classifier, self.calibration)
        missing = [label for label in labels if label not in self.backend.scored_labels(version)]
        if missing:
            report = self._refresh_labels(classifier, missing)
            warnings.extend(
                f"could not score {_shorten(label)!r}: {why}" for label, why in report.failed.items()
            )
        return version

    def _stored_version(self, labels: Sequence[str], warnings: list[str]) -> str:
        versions = self._stored_versions()
        if not versions:
            warnings.append("no stored trend scores: results have no trend boost")
            return ""
        version = versions[0]
        missing = [label for label in labels if label not in self.backend.scored_labels(version)]
        note = f"; not scored yet: {', '.join(map(repr, map(_shorten, missing)))}" if missing else ""
        warnings.append(f"boost from stored scores of model {version}{note}")
        return version

    def _stored_versions(self) -> list[str]:
        if isinstance(self.backend, VersionedScores):
            return self.backend.model_versions()
        last = self._state().get("model_version")
        return [last] if last else []

    # Refresh -----------------------------------------------------------------------------------------

    def refresh(
        self, hashtags: Sequence[str] | None = None, progress: Progress | None = None
    ) -> RefreshReport:
        """Score the current (or the given) trends with the current model; only new labels cost work."""
        warnings: list[str] = []
        labels = self.current_labels(warnings) if hashtags is None else self.labels_of(hashtags, warnings)
        classifier = self.classifier(warnings)
        if classifier is None:
            name = self.settings.classifier.name
            report = RefreshReport(classifier=name, model_version="", trending=labels)
            report.failed = {label: self._classifier_error for label in labels}
        else:
            report = self._refresh_labels(classifier, labels, progress)
        report.warnings = warnings + report.warnings
        return report

    def _refresh_labels(
        self, classifier: Classifier, labels: Sequence[str], progress: Progress | None = None
    ) -> RefreshReport:
        with self._lock:
            report = refresh(
                self.backend, classifier, labels, lambda: self._fit(classifier), progress, self.calibration
            )
        self._save_state(model_version=report.model_version)
        return report

    def _fit(self, classifier: Classifier) -> list[int]:
        if self._fitted_ids is None:
            movies = self._catalog_movies()
            if not movies:
                raise RuntimeError("the search index is empty: run `freshrank load` first")
            classifier.fit(movies)
            self._fitted_ids = [m.id for m in movies]
        return self._fitted_ids

    def _catalog_movies(self) -> list[Movie]:
        if isinstance(self.backend, MovieSource):
            return list(self.backend.movies())
        return load_catalog(self.settings.movies_path).movies

    # Components --------------------------------------------------------------------------------------

    def classifier(self, warnings: list[str] | None = None) -> Classifier | None:
        """The configured classifier, loaded once; None (with a warning) when it cannot be loaded."""
        with self._lock:
            retry = time.monotonic() - self._classifier_failed_at > CLASSIFIER_RETRY_SECONDS
            if self._classifier is None and (not self._classifier_error or retry):
                try:
                    self._classifier = self._load_classifier()
                    self._classifier_error = ""
                except Exception as exc:  # a missing model or a KServe server that is down
                    log.warning("classifier unavailable: %s", exc)
                    self._classifier_error = _shorten(str(exc)) or type(exc).__name__
                    self._classifier_failed_at = time.monotonic()
        if self._classifier is None and warnings is not None:
            warnings.append(f"classifier unavailable ({self._classifier_error})")
        return self._classifier

    def _store(self) -> TrendStore:
        if self._trend_store is None:
            self._trend_store = self._open_trend_store()
        return self._trend_store

    def health(self) -> dict[str, str]:
        """``"ok"`` or ``"degraded: reason"`` per component (search, trends, classifier)."""
        status: dict[str, str] = {}
        try:
            movies = self.backend.count()
            status["search"] = "ok" if movies else "degraded: the index is empty (run `freshrank load`)"
        except Exception as exc:
            status["search"] = f"degraded: {_shorten(str(exc))}"
        try:
            self._store().top(1)
            status["trends"] = "ok"
        except Exception as exc:
            self._trend_store = None
            status["trends"] = f"degraded: {_shorten(str(exc))}"
        classifier = self.classifier()
        status["classifier"] = "ok" if classifier is not None else f"degraded: {self._classifier_error}"
        for component, state in status.items():
            COMPONENT_HEALTHY.labels(component=component).set(1.0 if state == "ok" else 0.0)
        return status

    # Last known state (trends, model version) survives restarts -----------------------------------

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._state_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def _save_state(self, **changes: Any) -> None:
        state = {**self._state(), **changes}
        try:
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._state_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self._state_path)
        except OSError as exc:  # a read-only state dir must not break search
            log.debug("cannot save loop state: %s", exc)


def _open_trend_store(settings: Settings) -> TrendStore:
    from freshrank.trends import open_trend_store

    return open_trend_store(settings.resolved_trend_store_url)


def _load_classifier(settings: Settings) -> Classifier:
    from freshrank.classify.factory import load_classifier

    return load_classifier(settings)


def _trend_row(trend: Trend) -> dict[str, Any]:
    return {
        "hashtag": trend.hashtag,
        "label": trend.label,
        "score": trend.score,
        "count": trend.count,
        "baseline": trend.baseline,
    }


def _trend_of(row: dict[str, Any]) -> Trend:
    return Trend(
        hashtag=str(row["hashtag"]),
        label=str(row["label"]),
        score=float(row["score"]),
        count=int(row["count"]),
        baseline=float(row["baseline"]),
    )


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
