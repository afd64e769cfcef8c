"""ScoringLoop: the one writer. It indexes the catalogue, scores new labels and keeps the last known state.

Reads go through its ``reader`` (a read-only ``SearchService`` on its own read-only connection), which boosts
with the version of this loop's classifier. ``search`` is the ranking of callers that may write (the CLI, a
token holder): labels without stored scores are scored first.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshrank.catalog.loader import CatalogLoad, load_catalog
from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.classify.remote import ClassifierUnavailable
from freshrank.config import Settings
from freshrank.loop.retention import SEEN_FILE, GcReport, LabelClock, collect, plan
from freshrank.loop.scores import Calibration, Progress, RefreshReport, refresh, score_labels, scores_version
from freshrank.search import open_settings_backend
from freshrank.search.base import SearchBackend, SearchPage
from freshrank.search.service import (
    STATE_FILE,
    AdhocScores,
    SearchService,
    open_settings_trend_store,
    read_state,
    record_health,
    shorten,
    trend_row,
)
from freshrank.trends.base import Trend, TrendStore

log = logging.getLogger(__name__)

CLASSIFIER_RETRY_SECONDS = 60.0  # a classifier that failed to load is tried again after this long


@dataclass
class LoadReport:
    """``freshrank load``: what the file held and what the backend now holds."""

    catalog: CatalogLoad
    indexed: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.catalog.summary(), "indexed": self.indexed, "total_in_index": self.total}


class ScoringLoop:
    """Load, refresh and ad-hoc scoring over one backend, one trend store and one (lazy) classifier."""

    def __init__(
        self,
        settings: Settings,
        backend: SearchBackend,
        trend_store: Callable[[], TrendStore] | None = None,
        classifier: Callable[[], Classifier] | None = None,
        reader: SearchBackend | None = None,
        keep_state: bool = True,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self._load_classifier = classifier or (lambda: load_settings_classifier(settings))
        self._classifier: Classifier | None = None
        self._classifier_error = ""
        self._classifier_failed_at = 0.0
        self._fitted_ids: list[int] | None = None
        self._lock = threading.RLock()  # the writer's lock: fitting and writing scores, never searching
        self._load_lock = threading.Lock()
        self._state_path = settings.state_dir / STATE_FILE if keep_state else None
        self._clock: LabelClock | None = None
        self.calibration = Calibration.named(settings.search.calibration, settings.search.calibration_z)
        self.reader = SearchService(
            settings,
            reader or backend,
            trend_store or (lambda: open_settings_trend_store(settings)),
            model_version=self.version,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ScoringLoop:
        backend = open_settings_backend(settings)
        return cls(settings, backend, reader=open_settings_backend(settings, read_only=True))

    # Catalogue ---------------------------------------------------------------------------------------

    def load(self, path: Path | str | None = None) -> LoadReport:
        """Validate a catalogue file and index its good rows (bad rows are reported, never fatal)."""
        catalog = load_catalog(path or self.settings.movies_path)
        with self._lock:
            indexed = self.backend.index(catalog.movies)
            self._fitted_ids = None  # the classifier must fit the new catalogue
        return LoadReport(catalog=catalog, indexed=indexed, total=self.backend.count())

    # Trends and versions -----------------------------------------------------------------------------

    def labels_of(self, hashtags: Sequence[str], warnings: list[str]) -> list[str]:
        return self.reader.labels_of(hashtags, warnings)

    def current_trends(self, warnings: list[str]) -> list[Trend]:
        """The current trends, kept as a snapshot that searches boost with while the store is down."""
        trends = self.reader.current_trends(warnings)
        if not any("trend store unavailable" in w for w in warnings):
            snapshot = [trend_row(t) for t in trends]
            if snapshot != read_state(self.settings).get("trends"):
                self._save_state(trends=snapshot)
        return trends

    def current_labels(self, warnings: list[str]) -> list[str]:
        return list(dict.fromkeys(t.label for t in self.current_trends(warnings) if t.label))

    def version(self, warnings: list[str]) -> str:
        """The scores version of the current classifier; ``""`` (with a warning) when it cannot be loaded."""
        classifier = self.classifier(warnings)
        if classifier is None:
            return ""
        try:  # a remote classifier asks its server once; a hung or dead one must not fail the search
            return scores_version(classifier, self.calibration)
        except Exception as exc:
            log.warning("classifier version unavailable: %s", exc)
            if warnings is not None:
                warnings.append(f"classifier unavailable ({shorten(str(exc))})")
            return ""

    # Scoring -----------------------------------------------------------------------------------------

    def refresh(
        self, hashtags: Sequence[str] | None = None, progress: Progress | None = None
    ) -> RefreshReport:
        """Score the current (or the given) trends with the current model; only new labels cost work."""
        warnings: list[str] = []
        labels = self.current_labels(warnings) if hashtags is None else self.labels_of(hashtags, warnings)
        report = self.score(labels, progress, warnings)
        report.warnings = warnings + report.warnings
        if self._state_path is not None:  # a scratch loop (the gate's) leaves retention alone
            self.clock().touch(labels)
            if self.settings.retention.gc_on_refresh:
                report.gc = self.gc(report.model_version, labels).to_dict()
        return report

    def clock(self) -> LabelClock:
        """When each label last trended (``labels_seen.db`` in the state directory)."""
        if self._clock is None:
            self._clock = LabelClock(self.settings.state_dir / SEEN_FILE)
        return self._clock

    def gc(self, current_version: str | None = None, trending: Sequence[str] | None = None) -> GcReport:
        """Delete the scores retention no longer keeps (loop/retention.py); under the writer's lock."""
        warnings: list[str] = []
        if trending is None:
            trending = self.current_labels(warnings)
            self.clock().touch(trending)
        if current_version is None:
            current_version = str(read_state(self.settings).get("model_version") or "") or self.version(
                warnings
            )
        policy, now = self.settings.retention, time.time()
        with self._lock:
            entries = self.backend.score_entries()
            doomed = plan(entries, self.clock().last_seen(), current_version, trending, policy, now)
            report = collect(
                self.backend, doomed, policy.delete_batch, len(entries), policy.sweep_after_seconds
            )
        self.clock().forget_before(now - policy.label_days * 86_400)
        report.errors = warnings + report.errors
        return report

    def score(
        self, labels: Sequence[str], progress: Progress | None = None, warnings: list[str] | None = None
    ) -> RefreshReport:
        """Score and store the labels the current model lacks."""
        classifier = self.classifier(warnings)
        if classifier is None:
            report = RefreshReport(
                classifier=self.settings.classifier.name, model_version="", trending=list(labels)
            )
            report.failed = {label: self._classifier_error for label in labels}
            return report
        with self._lock:
            try:
                report = refresh(
                    self.backend,
                    classifier,
                    labels,
                    lambda: self._fit(classifier),
                    progress,
                    self.calibration,
                )
            except ClassifierUnavailable as exc:  # a remote server that is down, hung or refusing
                report = RefreshReport(classifier=classifier.name, model_version="", trending=list(labels))
                report.failed = {label: shorten(str(exc)) for label in labels}
                return report
        self._save_state(model_version=report.model_version)
        return report

    def score_in_memory(self, labels: Sequence[str]) -> tuple[str, AdhocScores]:
        """(version, calibrated scores) of ``labels`` computed now and written nowhere."""
        warnings: list[str] = []
        classifier = self.classifier(warnings)
        if classifier is None:
            raise RuntimeError("; ".join(warnings))
        with self._lock:  # fitting and scoring share the classifier's state
            ids = self._fit(classifier)
            scores = score_labels(classifier, labels, ids, self.calibration)
        return scores_version(classifier, self.calibration), scores

    def search(
        self,
        text: str = "",
        genre: str | None = None,
        hashtags: Sequence[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        adhoc: AdhocScores | None = None,
        crowd: Sequence[Trend] | None = None,
    ) -> SearchPage:
        """Search for a caller that may write: labels the current model lacks are scored (stored) first.

        ``crowd``: a trending set to boost with instead of the store's (see ``SearchService.search``)."""
        warnings: list[str] = []
        if crowd is not None:
            labels = list(dict.fromkeys(t.label for t in crowd if t.label))
        else:
            labels = self.reader.labels(hashtags, [])
        version = self.version([])
        missing = self.reader.missing(labels, version) if version else []
        if missing:
            report = self.score(missing)
            warnings.extend(
                f"could not score {shorten(label)!r}: {why}" for label, why in report.failed.items()
            )
        page = self.reader.search(text, genre, hashtags, limit, offset, adhoc, crowd=crowd)
        return SearchPage(page.hits, page.total, warnings + page.warnings, page.label_weights)

    def _fit(self, classifier: Classifier) -> list[int]:
        if self._fitted_ids is None:
            movies = self._catalog_movies()
            if not movies:
                raise RuntimeError("the search index is empty: run `freshrank load` first")
            classifier.fit(movies)
            self._fitted_ids = [m.id for m in movies]
        return self._fitted_ids

    def _catalog_movies(self) -> list[Movie]:
        return self.reader.catalog() or load_catalog(self.settings.movies_path).movies

    # Components --------------------------------------------------------------------------------------

    def classifier(self, warnings: list[str] | None = None) -> Classifier | None:
        """The configured classifier, loaded once; None (with a warning) when it cannot be loaded."""
        with self._load_lock:  # not the writer's lock: searches ask for the version while a label is scored
            retry = time.monotonic() - self._classifier_failed_at > CLASSIFIER_RETRY_SECONDS
            if self._classifier is None and (not self._classifier_error or retry):
                try:
                    self._classifier = self._load_classifier()
                    self._classifier_error = ""
                except Exception as exc:  # a missing model or a KServe server that is down
                    log.warning("classifier unavailable: %s", exc)
                    self._classifier_error = shorten(str(exc)) or type(exc).__name__
                    self._classifier_failed_at = time.monotonic()
        if self._classifier is None and warnings is not None:
            warnings.append(f"classifier unavailable ({self._classifier_error})")
        return self._classifier

    def health(self) -> dict[str, str]:
        """``"ok"`` or ``"degraded: reason"`` per component (search, trends, classifier)."""
        status = self.reader.health()
        classifier = self.classifier()
        status["classifier"] = "ok" if classifier is not None else f"degraded: {self._classifier_error}"
        record_health(status)
        return status

    # Last known state (trends, model version) survives restarts -----------------------------------

    def _save_state(self, **changes: Any) -> None:
        if self._state_path is None:  # a scratch loop (the gate's) leaves the serving state alone
            return
        state = {**read_state(self.settings), **changes}
        try:
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._state_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self._state_path)
        except OSError as exc:  # a read-only state dir must not break scoring
            log.debug("cannot save loop state: %s", exc)


def load_settings_classifier(settings: Settings) -> Classifier:
    from freshrank.classify.factory import load_classifier

    return load_classifier(settings)
