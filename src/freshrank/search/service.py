"""SearchService: the read-only ranker that the CLI, the web API, the evaluation and the gate rank through.

It resolves hashtags to labels, reads the current trends and the stored trend scores, and ranks. It never
classifies and never writes: labels without stored scores rank without their boost (with a warning); the
scoring loop (``freshrank.loop``) is what scores them. It degrades instead of failing: an unreachable trend
store means the last known trends (or no boost).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.labels import hashtag_to_label
from freshrank.metrics import COMPONENT_HEALTHY
from freshrank.search import open_settings_backend
from freshrank.search.base import SearchBackend, SearchHit, SearchPage, SearchRequest
from freshrank.search.weights import trend_weights
from freshrank.trends.base import Trend, TrendStore

log = logging.getLogger(__name__)

STATE_FILE = "loop_state.json"  # written by the scoring loop: last trends and model version
HEALTH_DEADLINE_S = 1.0  # /health answers within this, whatever server hangs
_PROBES = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health-probe")
MAX_RERANK_DEPTH = 10_000  # in-memory (ad-hoc) boosts re-rank at most this many hits (the engines' cap)

ModelVersion = Callable[[list[str]], str]
"""The scores version to boost with (``""`` when unknown); appends its warnings to the list it is given."""

AdhocScores = Mapping[str, Mapping[int, float]]
"""Calibrated scores of labels that are not stored (label → movie id → score; absent ids score 0)."""


@runtime_checkable
class MovieSource(Protocol):
    """A backend that can list what it indexed (the classifier fits on exactly that catalogue)."""

    def movies(self) -> Any: ...


@runtime_checkable
class VersionedScores(Protocol):
    """A backend that knows which model versions have stored scores, newest first."""

    def model_versions(self) -> list[str]: ...


class SearchService:
    """Search and health over one backend and one trend store; reads only."""

    def __init__(
        self,
        settings: Settings,
        backend: SearchBackend,
        trend_store: Callable[[], TrendStore] | None = None,
        model_version: ModelVersion | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self._open_trend_store = trend_store or (lambda: open_settings_trend_store(settings))
        self._model_version = model_version
        self._trend_store: TrendStore | None = None
        self._last_trends: list[Trend] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, model_version: ModelVersion | None = None) -> SearchService:
        """A service on the configured backend, opened read-only where the engine allows it."""
        return cls(settings, open_settings_backend(settings, read_only=True), model_version=model_version)

    # Search ------------------------------------------------------------------------------------------

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
        """Rank by text + trend boost; ``hashtags=None`` means the current trends, ``[]`` means no boost.

        The current trends (or ``crowd``, a trending set given instead of the store's) boost with weights
        from their burst strength (``search.weights``); explicit ``hashtags`` weigh 1.0 each. ``adhoc``
        holds in-memory scores for labels that have no stored ones (they boost like stored ones).
        """
        warnings: list[str] = []
        weights: dict[str, float] = {}
        if crowd is not None or hashtags is None:
            trends = list(crowd) if crowd is not None else self.current_trends(warnings)
            weights = trend_weights(trends, self.settings.search.trend_temperature)
            labels = list(weights)
        else:
            labels = self.labels_of(hashtags, warnings)
        version = self.version(labels, warnings, adhoc or {}) if labels else ""
        request = SearchRequest(
            text=text,
            genre=genre or None,
            labels=tuple(labels),
            model_version=version,
            limit=limit,
            offset=offset,
            boost_weight=self.settings.search.boost_weight,
            label_weights=tuple(weights.get(label, 1.0) for label in labels),
        )
        extra = {label: adhoc[label] for label in labels if adhoc and label in adhoc}
        page = self.backend.search(request) if not extra else self._rerank(request, extra, warnings)
        return SearchPage(page.hits, page.total, warnings + page.warnings, request.weights())

    def labels(self, hashtags: Sequence[str] | None, warnings: list[str]) -> list[str]:
        """The labels a search boosts with: the current trends' (``None``) or the given hashtags'."""
        return self.current_labels(warnings) if hashtags is None else self.labels_of(hashtags, warnings)

    def labels_of(self, hashtags: Sequence[str], warnings: list[str]) -> list[str]:
        """Distinct non-empty labels of ``hashtags`` in order; empty ones are reported and dropped."""
        labels: list[str] = []
        for hashtag in hashtags:
            label = hashtag_to_label(hashtag)
            if not label:
                warnings.append(f"hashtag {shorten(hashtag)!r} has no words to classify; ignored")
            elif label not in labels:
                labels.append(label)
        return labels

    def current_trends(self, warnings: list[str]) -> list[Trend]:
        """The trend store's top N, or the last trends seen (here, or by the loop) when it is unreachable."""
        try:
            trends = self._store().top(self.settings.trends.top_n)
        except Exception as exc:  # any store failure (Redis down, file unreadable) degrades the boost only
            self._trend_store = None
            last = self._last_trends if self._last_trends is not None else self._stored_trends()
            note = "last known trends" if last else "no trend boost"
            warnings.append(f"trend store unavailable ({shorten(str(exc))}): using {note}")
            return last
        self._last_trends = trends
        return trends

    def current_labels(self, warnings: list[str]) -> list[str]:
        return list(dict.fromkeys(t.label for t in self.current_trends(warnings) if t.label))

    def version(self, labels: Sequence[str], warnings: list[str], adhoc: AdhocScores | None = None) -> str:
        """The scores version that boosts ``labels``; labels it has no scores for are named in a warning."""
        version = self._model_version(warnings) if self._model_version else ""
        if not version:
            return self._stored_version(labels, warnings, adhoc or {})
        missing = [label for label in self.missing(labels, version) if not adhoc or label not in adhoc]
        if missing:
            warnings.append(f"not scored yet (ranked without their boost): {_names(missing)}")
        return version

    def missing(self, labels: Sequence[str], version: str) -> list[str]:
        """The labels that have no stored scores for ``version``."""
        if not labels:
            return []
        scored = self.backend.scored_labels(version) if version else set()
        return [label for label in labels if label not in scored]

    def _stored_version(self, labels: Sequence[str], warnings: list[str], adhoc: AdhocScores) -> str:
        versions = self._stored_versions()
        if not versions:
            if not adhoc:
                warnings.append("no stored trend scores: results have no trend boost")
            return ""
        version = versions[0]
        missing = [label for label in self.missing(labels, version) if label not in adhoc]
        note = f"; not scored yet: {_names(missing)}" if missing else ""
        warnings.append(f"boost from stored scores of model {version}{note}")
        return version

    def _stored_versions(self) -> list[str]:
        if isinstance(self.backend, VersionedScores):
            return self.backend.model_versions()
        last = read_state(self.settings).get("model_version")
        return [last] if last else []

    def _stored_trends(self) -> list[Trend]:
        return [trend_of(row) for row in read_state(self.settings).get("trends", [])]

    def _rerank(self, request: SearchRequest, adhoc: AdhocScores, warnings: list[str]) -> SearchPage:
        """Rank with in-memory scores: the stored ranking's hits (up to the engines' cap) re-scored."""
        weights = request.weights()
        stored = tuple(label for label in weights if label not in adhoc)
        wide = replace(
            request,
            labels=stored,
            label_weights=tuple(weights[label] for label in stored),
            limit=MAX_RERANK_DEPTH,
            offset=0,
        )
        page = self.backend.search(wide)
        if page.total > MAX_RERANK_DEPTH:
            warnings.append(f"ad-hoc trend boost re-ranks the first {MAX_RERANK_DEPTH} of {page.total} hits")
        weight = request.boost_weight
        hits = [_with_adhoc(hit, weights, adhoc, weight) for hit in page.hits]
        hits.sort(key=lambda hit: (-hit.score, hit.id))
        return SearchPage(
            hits=hits[request.offset : request.offset + request.limit],
            total=page.total,
            warnings=page.warnings,
        )

    # Components --------------------------------------------------------------------------------------

    def _store(self) -> TrendStore:
        if self._trend_store is None:
            self._trend_store = self._open_trend_store()
        return self._trend_store

    def health(self) -> dict[str, str]:
        """``"ok"`` or ``"degraded: reason"`` per component this service reads (search, trends), probed in
        parallel and within ``HEALTH_DEADLINE_S`` whatever hangs."""
        return run_probes({"search": self._search_state, "trends": self._trends_state})

    def _search_state(self) -> str:
        movies = self.backend.count()
        return "ok" if movies else "degraded: the index is empty (run `freshrank load`)"

    def _trends_state(self) -> str:
        try:
            self._store().top(1)
        except Exception:
            self._trend_store = None  # reopened by the next call
            raise
        return "ok"

    def catalog(self) -> list[Movie]:
        """Every indexed movie in id order (empty when the backend cannot list them)."""
        return list(self.backend.movies()) if isinstance(self.backend, MovieSource) else []


def _with_adhoc(hit: SearchHit, weights: Mapping[str, float], adhoc: AdhocScores, weight: float) -> SearchHit:
    extra = {label: float(adhoc[label].get(hit.id, 0.0)) for label in weights if label in adhoc}
    scores = {label: extra.get(label, hit.trend_scores.get(label, 0.0)) for label in weights}
    boost = sum(weights[label] * value for label, value in extra.items())
    return replace(hit, trend_scores=scores, score=hit.score + weight * boost)


def open_settings_trend_store(settings: Settings) -> TrendStore:
    """The configured trend store, with the configured TTL."""
    from freshrank.trends import open_trend_store

    return open_trend_store(settings.resolved_trend_store_url, settings.trends.ttl_seconds)


def run_probes(
    probes: Mapping[str, Callable[[], str]], deadline_s: float = HEALTH_DEADLINE_S
) -> dict[str, str]:
    """Each component's state, its probes run in parallel; one with no answer within ``deadline_s`` (a server
    hung before its circuit opened) is degraded, and its probe finishes in the background."""
    futures = {name: _PROBES.submit(probe) for name, probe in probes.items()}
    done, _ = wait(futures.values(), timeout=deadline_s)
    status: dict[str, str] = {}
    for name, future in futures.items():
        if future not in done:
            status[name] = f"degraded: no answer within {deadline_s:g} s (server hung?)"
            continue
        try:
            status[name] = future.result()
        except Exception as exc:
            status[name] = f"degraded: {shorten(str(exc))}"
    record_health(status)
    return status


def record_health(status: Mapping[str, str]) -> None:
    for component, state in status.items():
        COMPONENT_HEALTHY.labels(component=component).set(1.0 if state == "ok" else 0.0)


def read_state(settings: Settings) -> dict[str, Any]:
    """The scoring loop's last known state (trends, model version); empty when there is none."""
    try:
        return dict(json.loads((settings.state_dir / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def trend_row(trend: Trend) -> dict[str, Any]:
    return {
        "hashtag": trend.hashtag,
        "label": trend.label,
        "score": trend.score,
        "count": trend.count,
        "baseline": trend.baseline,
        "authors": trend.authors,
        "expected": trend.expected,
        "evidence": trend.evidence,
    }


def trend_of(row: dict[str, Any]) -> Trend:
    return Trend(
        hashtag=str(row["hashtag"]),
        label=str(row["label"]),
        score=float(row["score"]),
        count=int(row["count"]),
        baseline=float(row["baseline"]),
        authors=None if row.get("authors") is None else int(row["authors"]),
        expected=None if row.get("expected") is None else float(row["expected"]),
        evidence=None if row.get("evidence") is None else int(row["evidence"]),
    )


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names(labels: Sequence[str]) -> str:
    return ", ".join(repr(shorten(label)) for label in labels)
