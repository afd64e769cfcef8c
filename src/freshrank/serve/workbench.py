"""The components the web API talks to, and the rankings, comparisons and metrics it shows.

Every ranking reads through the loop's read-only search; labels without stored scores are scored through the
loop for a token holder and into the ad-hoc cache for anyone else (see ``unstored_scores``).
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from freshrank.breakers import open_message
from freshrank.classify.registry import CHAMPION, CHAMPION_FILE, RegistryError, RegistryReader
from freshrank.config import Settings
from freshrank.evaluate.base import JudgmentStore, QueryId
from freshrank.evaluate.metrics import judged_at_k, ndcg_at_k, precision_at_k
from freshrank.evaluate.store import open_judgment_store
from freshrank.labels import hashtag_to_label
from freshrank.loop.adhoc import AdhocCache, RateLimited
from freshrank.loop.service import ScoringLoop
from freshrank.search.base import SearchHit, SearchPage
from freshrank.search.service import AdhocScores, SearchService
from freshrank.serve.schemas import (
    CompareOut,
    CompareParams,
    CompareRow,
    CompareSide,
    K,
    QueryMetrics,
    QueryOut,
    SearchOut,
    SearchParams,
)
from freshrank.serve.snapshots import SnapshotStore
from freshrank.trends import Trend, TrendStore, open_trend_store

log = logging.getLogger(__name__)

SPARKLINE_POINTS = 24
QRELS_TTL_SECONDS = 2.0  # grades saved by another process show within this
CHAMPION_CHECK_SECONDS = 1.0  # a promotion or rollback made by another server process is seen within this
MAX_CACHED_QRELS = 4096

# Components ------------------------------------------------------------------------------------------


class Unavailable(Exception):
    """A component (search backend, store, classifier) could not answer."""


@dataclass(frozen=True)
class Caller:
    """Who asks: the client (for the ad-hoc rate limit) and whether it holds the API token."""

    client: str
    may_write: bool = False


class Workbench:
    """The components the API talks to, each opened once on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._opened: dict[str, Any] = {}
        self._candidate: tuple[str, ScoringLoop] | None = None
        self.monitor_lock = threading.Lock()
        self.monitor_cache: tuple[float, dict[str, Any]] | None = None
        self._qrels: dict[tuple[str, str], tuple[float, dict[int, int]]] = {}
        self._champion_file = settings.resolved_registry_dir / CHAMPION_FILE
        self._champion_seen = (0.0, _stamp(self._champion_file))  # (checked at, file stamp)

    def _get(self, name: str, opener: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._opened:
                try:
                    self._opened[name] = opener()
                except Exception as exc:
                    raise Unavailable(f"{name} unavailable: {exc}") from exc
            return self._opened[name]

    @property
    def loop(self) -> ScoringLoop:
        """The scoring loop (the writer); its ``reader`` is the read-only search every request ranks with."""
        self._follow_champion()
        loop: ScoringLoop = self._get("search service", lambda: ScoringLoop.from_settings(self.settings))
        return loop

    @property
    def service(self) -> SearchService:
        return self.loop.reader

    @property
    def adhoc(self) -> AdhocCache:
        """Scores of anonymous callers' new labels, in memory only."""
        loop, search = self.loop, self.settings.search

        def score(labels: Sequence[str]) -> AdhocScores:
            return loop.score_in_memory(labels)[1]

        def open_cache() -> AdhocCache:
            return AdhocCache(
                score,
                search.adhoc_cache_size,
                search.adhoc_ttl_seconds,
                search.adhoc_per_client,
                search.adhoc_window_seconds,
            )

        cache: AdhocCache = self._get("ad-hoc scores", open_cache)
        return cache

    @property
    def trends(self) -> TrendStore:
        url, ttl = self.settings.resolved_trend_store_url, self.settings.trends.ttl_seconds
        store: TrendStore = self._get("trend store", lambda: open_trend_store(url, ttl))
        return store

    @property
    def judgments(self) -> JudgmentStore:
        opened = self._opened.get("judgments store")
        if opened is not None:
            return opened
        url, limits = self.settings.resolved_judgments_url, self.settings.judgments_store
        store: JudgmentStore = self._get("judgments store", lambda: open_judgment_store(url, limits=limits))
        return store

    def judgments_state(self) -> str:
        """``ok`` or ``degraded: why`` without a call to the store (health must answer at once)."""
        store = self._opened.get("judgments store")
        if store is None:
            return "degraded: not open (tried again on the next judgment)"
        breaker = getattr(store, "breaker", None)
        if breaker is not None and breaker.current_state == "open":
            return f"degraded: {open_message(breaker, 'judgments store')}"
        return "ok"

    def qrels(self, key: str, genre: str) -> dict[int, int]:
        """The grades of one query, read at most once per ``QRELS_TTL_SECONDS`` (a search shows them);
        a grade saved through this API is seen at once (``forget_qrels``)."""
        now = time.monotonic()
        cached = self._qrels.get((key, genre))
        if cached is not None and now - cached[0] < QRELS_TTL_SECONDS:
            return cached[1]
        qrels = {j.doc_id: j.grade for j in self.judgments.judgments(trend=key, genre=genre)}
        with self._lock:
            if len(self._qrels) >= MAX_CACHED_QRELS:
                self._qrels.clear()
            self._qrels[(key, genre)] = (now, qrels)
        return qrels

    def forget_qrels(self) -> None:
        with self._lock:
            self._qrels.clear()

    @property
    def snapshots(self) -> SnapshotStore:
        path = self.settings.state_dir / "workbench" / "snapshots.db"
        store: SnapshotStore = self._get("snapshot store", lambda: SnapshotStore(path))
        return store

    def candidate(self, name: str) -> ScoringLoop:
        """A scoring loop whose search boosts with model ``name`` (stored scores; a token holder's scored)."""
        try:
            version = RegistryReader.from_settings(self.settings).resolve(name)
        except RegistryError as exc:
            raise HTTPException(404, str(exc)) from exc
        settings = self.settings.model_copy(deep=True)
        settings.classifier.name = version
        with self._lock:
            held = self._candidate
            if held is None or held[0] != version:  # keep one candidate loaded, not every one ever compared
                held = (version, ScoringLoop.from_settings(settings))
                self._candidate = held
            return held[1]

    def open_stores(self) -> None:
        """Open the judgments store before serving: its Alembic migration must not run in two threads."""
        try:
            _ = self.judgments
        except Unavailable as exc:  # e.g. MariaDB down: reading still works, judging says why
            log.warning("%s", exc)

    def warm_up(self) -> None:
        """Load the search service and its classifier, so the first search does not wait for them; then
        take what is loaded out of the garbage collector's scans (``gc.freeze``): a full collection went
        over the model's and the catalogue's objects every few seconds, 100-200 ms each, and every request
        in flight waited for it."""
        try:
            self.loop.classifier()
        except Exception as exc:
            log.warning("warm-up failed: %s", exc)
        gc.collect()
        gc.freeze()

    def _follow_champion(self) -> None:
        """Reopen the service when the registry's champion file changed (a promotion or rollback made by
        another server process); looked at once per ``CHAMPION_CHECK_SECONDS``."""
        checked, stamp = self._champion_seen
        now = time.monotonic()
        if now - checked < CHAMPION_CHECK_SECONDS:
            return
        current = _stamp(self._champion_file)
        self._champion_seen = (now, current)
        if current != stamp:
            self.forget_service()

    def forget_service(self) -> None:
        """Drop the search service so the next call reopens it (after a promotion changed the champion)."""
        with self._lock:
            self._champion_seen = (time.monotonic(), _stamp(self._champion_file))
            self._opened.pop("search service", None)
            self._opened.pop("ad-hoc scores", None)
            self._candidate = None
            self.monitor_cache = None

    def close(self) -> None:
        with self._lock:
            for component in self._opened.values():
                close = getattr(component, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:  # closing on shutdown: nothing left to tell
                        log.debug("closing %r failed", component, exc_info=True)
            self._opened.clear()


def _stamp(path: Path) -> tuple[int, int] | None:
    """(modification time, size) of a file; None when it does not exist."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


# Ranking helpers -------------------------------------------------------------------------------------


def judgment_key(q: str, trends: Sequence[str]) -> str:
    """Judgments of a text query are stored under its text, those of a trend-only query under the hashtag."""
    text = " ".join(q.split())
    return text or " ".join(trends)


def judged_query(q: str, trends: Sequence[str], genre: str) -> QueryId:
    """The judged query a search is (its ``trend`` empty when there is nothing to judge)."""
    return QueryId(judgment_key(q, trends), genre)


def hashtag_words(trends: Sequence[str]) -> str:
    from freshrank.evaluate.runner import hashtag_words as words

    return " ".join(words(t) for t in trends)


def rank_page(
    wb: Workbench,
    caller: Caller,
    q: str,
    genre: str,
    trends: list[str] | None,
    limit: int,
    offset: int = 0,
    loop: ScoringLoop | None = None,
    crowd: Sequence[Trend] | None = None,
) -> SearchPage:
    """One page ranked by ``loop`` (the serving one by default); ``crowd``: the live trends already read."""
    loop = loop or wb.loop
    try:
        adhoc = _unstored_scores(wb, loop, caller, trends)
        page = loop.reader.search(
            q, genre or None, trends, limit=limit, offset=offset, adhoc=adhoc, crowd=crowd
        )
    except (Unavailable, HTTPException):
        raise
    except Exception as exc:
        raise Unavailable(f"search failed: {exc}") from exc
    return page


def _unstored_scores(
    wb: Workbench, loop: ScoringLoop, caller: Caller, trends: list[str] | None
) -> AdhocScores | None:
    """Labels without stored scores: a token holder's are scored and stored, other picked ones go ad hoc.

    Live trends without stored scores wait for the loop's refresh (they rank without their boost meanwhile).
    """
    if trends == [] or not (caller.may_write or trends):
        return None
    labels = loop.reader.labels(trends, [])
    version = loop.version([])
    missing = loop.reader.missing(labels, version) if version else []
    if not missing:
        return None
    if caller.may_write:
        loop.score(missing)
        return None
    if loop is not wb.loop:  # a candidate model's labels are scored by a token holder only
        return None
    try:
        return wb.adhoc.scores(caller.client, missing)
    except RateLimited as exc:
        retry = str(math.ceil(exc.retry_after))
        raise HTTPException(429, str(exc), headers={"Retry-After": retry}) from exc
    except Exception as exc:  # the classifier is down: rank without these labels' boost (search warns)
        log.warning("ad-hoc scoring failed: %s", exc)
        return None


def _live_trends(wb: Workbench, warnings: list[str]) -> list[Trend] | None:
    """The trends boosting now, read once per request (the store down: the last known ones, with a warning);
    None when the search service itself cannot open (the ranking then says why)."""
    try:
        return wb.service.current_trends(warnings)
    except Exception as exc:
        log.warning("search service unavailable: %s", exc)
        return None


def _label_map(trends: Sequence[Trend], picked: Sequence[str]) -> dict[str, str]:
    """label -> hashtag of the boosting and the picked trends (to show ``#SharkWeek``, not ``shark week``)."""
    return {**{t.label: t.hashtag for t in trends}, **{hashtag_to_label(h): h for h in picked}}


def query_qrels(wb: Workbench, query: QueryId) -> dict[int, int]:
    """The graded documents of one query (its row of the ``Qrels``)."""
    if not query.trend:
        return {}
    try:
        return wb.qrels(query.trend, query.genre)
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"judgments store failed: {exc}") from exc


def _hit_out(
    rank: int,
    hit: SearchHit,
    weight: float,
    labels: dict[str, str],
    qrels: dict[int, int],
    label_weights: dict[str, float],
) -> dict[str, Any]:
    """One ``HitOut`` as plain data."""
    contributions = [
        {
            "label": label,
            "hashtag": labels.get(label, label),
            "trend_score": score,
            "weight": (w := weight * label_weights.get(label, 1.0)),
            "contribution": w * score,
        }
        for label, score in hit.trend_scores.items()
    ]
    return {
        "rank": rank,
        "id": hit.id,
        "title": hit.title,
        "release_year": hit.release_year,
        "genres": list(hit.genres),
        "overview": hit.overview,
        "score": hit.score,
        "text_score": hit.text_score,
        "contributions": contributions,
        "grade": qrels.get(hit.id),
    }


def query_figures(query: QueryId, ranking: list[int], qrels: dict[int, int]) -> QueryMetrics:
    """The workbench's figures of one query's ranking, keyed by its ``QueryId``."""
    key, genre = query.trend, query.genre
    judged = qrels if key else {}
    if not key:
        return QueryMetrics(
            query_id="",
            key=key,
            genre=genre,
            ndcg_at_10=None,
            p_at_10=None,
            judged_at_10=None,
            judged_in_top=0,
            judgments=0,
            relevant=0,
        )
    return QueryMetrics(
        query_id=str(query),
        key=key,
        genre=genre,
        ndcg_at_10=ndcg_at_k(ranking, judged, K),
        p_at_10=precision_at_k(ranking, judged, K),
        judged_at_10=judged_at_k(ranking, judged, K) if ranking else 0.0,
        judged_in_top=sum(1 for doc in ranking[:K] if doc in judged),
        judgments=len(judged),
        relevant=sum(1 for grade in judged.values() if grade >= 1),
    )


@dataclass(frozen=True)
class Boost:
    """Trends that boost: ``request`` for the service (None = the live trends), ``shown`` for the page;
    ``live``: the live trends read for this request (one trend store read per request, not three)."""

    request: list[str] | None
    shown: list[str]
    live: tuple[Trend, ...] | None = None
    warnings: tuple[str, ...] = ()


def boost_for(wb: Workbench, params: SearchParams) -> Boost:
    if not params.boost:
        return Boost([], [])
    picked = list(dict.fromkeys(params.trend))
    if picked:
        return Boost(picked, picked)
    warnings: list[str] = []
    live = _live_trends(wb, warnings)
    if live is None:
        return Boost(None, [])
    return Boost(None, [t.hashtag for t in live], tuple(live), tuple(warnings))


def search_answer(wb: Workbench, caller: Caller, params: SearchParams) -> dict[str, Any]:
    """The search answer as plain data in the shape of ``SearchOut``: the API serialises it as it is (a
    ``HitOut`` with a ``Contribution`` per trending label, built and validated for every hit, was a third
    of a boosted search's CPU)."""
    boost = boost_for(wb, params)
    judged = judged_query(params.q, params.trend, params.genre)
    page = rank_page(
        wb, caller, params.q, params.genre, boost.request, params.limit, params.offset, crowd=boost.live
    )
    warnings = [*boost.warnings, *page.warnings]
    try:
        qrels = query_qrels(wb, judged)
    except Unavailable as exc:  # search goes on without the grades
        qrels = {}
        warnings.append(f"{exc}: grades are not shown")
    weight = wb.settings.search.boost_weight
    labels = _label_map(boost.live or (), params.trend)
    return {
        "query": {"q": params.q, "genre": params.genre, "trends": boost.shown, "key": judged.trend},
        "total": page.total,
        "offset": params.offset,
        "limit": params.limit,
        "boost_weight": weight,
        "hits": [
            _hit_out(params.offset + i, hit, weight, labels, qrels, page.label_weights)
            for i, hit in enumerate(page.hits, start=1)
        ],
        "warnings": warnings,
    }


def search_out(wb: Workbench, caller: Caller, params: SearchParams) -> SearchOut:
    return SearchOut.model_validate(search_answer(wb, caller, params))


def _side(name: str, query: QueryOut, page: SearchPage, qrels: dict[int, int]) -> CompareSide:
    ranking = [hit.id for hit in page.hits]
    rows = [
        CompareRow(
            rank=i,
            id=hit.id,
            title=hit.title,
            score=hit.score,
            grade=qrels.get(hit.id),
            other_rank=None,
            movement=None,
        )
        for i, hit in enumerate(page.hits, start=1)
    ]
    return CompareSide(
        name=name,
        query=query,
        metrics=query_figures(QueryId(query.key, query.genre), ranking, qrels),
        rows=rows,
    )


def _link_movement(left: CompareSide, right: CompareSide) -> None:
    """Fill each row's rank on the other side; movement is positive where the right side ranks it higher."""
    left_rank = {row.id: row.rank for row in left.rows}
    right_rank = {row.id: row.rank for row in right.rows}
    for row in right.rows:
        row.other_rank = left_rank.get(row.id)
        row.movement = None if row.other_rank is None else row.other_rank - row.rank
    for row in left.rows:
        row.other_rank = right_rank.get(row.id)
        row.movement = None if row.other_rank is None else row.rank - row.other_rank


def compare_baseline(wb: Workbench, caller: Caller, params: CompareParams) -> CompareOut:
    """Boosted ranking against the lexical baseline (text, or the hashtags' words, with no boost)."""
    boost = boost_for(wb, params)
    judged = judged_query(params.q, params.trend, params.genre)
    key = judged.trend
    qrels = query_qrels(wb, judged)
    base_text = params.q or hashtag_words(params.trend)
    base = rank_page(wb, caller, base_text, params.genre, [], params.limit)
    boosted = rank_page(wb, caller, params.q, params.genre, boost.request, params.limit, crowd=boost.live)
    left = _side(
        "baseline (no trend boost)",
        QueryOut(q=base_text, genre=params.genre, trends=[], key=key),
        base,
        qrels,
    )
    right = _side(
        "trend-boosted", QueryOut(q=params.q, genre=params.genre, trends=boost.shown, key=key), boosted, qrels
    )
    _link_movement(left, right)
    return CompareOut(mode="baseline", left=left, right=right)


def compare_models(wb: Workbench, caller: Caller, params: CompareParams) -> CompareOut:
    """The champion's boosted ranking against a candidate model's (its scores computed on demand)."""
    if not params.candidate:
        raise HTTPException(422, "mode=models needs candidate=<model version>")
    boost = boost_for(wb, params)
    judged = judged_query(params.q, params.trend, params.genre)
    key = judged.trend
    qrels = query_qrels(wb, judged)
    candidate_loop = wb.candidate(params.candidate)
    champion = rank_page(wb, caller, params.q, params.genre, boost.request, params.limit, crowd=boost.live)
    candidate = rank_page(
        wb, caller, params.q, params.genre, boost.request, params.limit, loop=candidate_loop, crowd=boost.live
    )
    query = QueryOut(q=params.q, genre=params.genre, trends=boost.shown, key=key)
    left = _side(f"serving ({_serving_model(wb)})", query, champion, qrels)
    right = _side(f"candidate ({params.candidate})", query, candidate, qrels)
    _link_movement(left, right)
    return CompareOut(mode="models", left=left, right=right)


def champion_version(wb: Workbench) -> str:
    return RegistryReader.from_settings(wb.settings).champion()


def _serving_model(wb: Workbench) -> str:
    """The model the search service boosts with: the configured classifier, or the registry's champion."""
    name = wb.settings.classifier.name
    return f"champion {champion_version(wb)}" if name == CHAMPION else name


def trend_history(trend: Trend) -> list[int]:
    """The trend's per-bin counts, oldest first, for its sparkline."""
    return [int(c) for c in trend.history][-SPARKLINE_POINTS:]


def plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value
