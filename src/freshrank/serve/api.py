"""The search API and the relevance workbench page: search with explanations, judge, compare, operate.

Reading is public; every write (judgments, snapshots, refresh, promote, rollback) needs the bearer token
``settings.serve.api_token`` and is refused while none is configured. Searches read only: a trend label
without stored scores is scored through the loop (stored) for a token holder, into the bounded in-memory
ad-hoc cache for anyone else (rate-limited per client: 429 with Retry-After). ``create_app`` builds the app,
``run`` serves it with uvicorn (``freshrank serve api``).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from freshrank.config import Settings
from freshrank.evaluate.base import Judgment, JudgmentStore
from freshrank.evaluate.metrics import judged_at_k, ndcg_at_k, precision_at_k
from freshrank.evaluate.store import open_judgment_store
from freshrank.loop.adhoc import AdhocCache, RateLimited
from freshrank.loop.service import ScoringLoop
from freshrank.metrics import SEARCH_LATENCY, SEARCH_REQUESTS
from freshrank.search.base import SearchHit, SearchPage
from freshrank.search.service import AdhocScores, SearchService, hashtag_label
from freshrank.serve.snapshots import (
    MAX_NAME_CHARS,
    NAME_PATTERN,
    RankedDoc,
    Snapshot,
    SnapshotExists,
    SnapshotNotFound,
    SnapshotQuery,
    SnapshotStore,
)
from freshrank.train.lifecycle import LifecycleError
from freshrank.train.registry import CHAMPION, EMBEDDING, Registry, RegistryError
from freshrank.trends import Trend, TrendStore, open_trend_store

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
WHO = "workbench"
K = 10
MAX_QUERY_CHARS = 500
MAX_HASHTAG_CHARS = 280  # a tweet; the judgments store refuses keys over 255 with its own clear message
MAX_GENRE_CHARS = 100
MAX_TRENDS = 20
SPARKLINE_POINTS = 24
MONITOR_TTL = 30.0  # seconds a monitor decision is served before it is computed again
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Hashtag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_HASHTAG_CHARS)]
Genre = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_GENRE_CHARS)]
QueryText = Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS)]


# Inputs ----------------------------------------------------------------------------------------------


class SearchParams(BaseModel):
    """A query as the page states it: text, genre filter, the trends that boost it (none given = live)."""

    model_config = ConfigDict(extra="forbid")

    q: QueryText = ""
    genre: Genre = ""
    trend: list[Hashtag] = Field(default_factory=list, max_length=MAX_TRENDS)
    boost: bool = True
    limit: int = Field(default=10, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)


class CompareParams(SearchParams):
    mode: Literal["baseline", "models"] = "baseline"
    candidate: Annotated[str, StringConstraints(max_length=100)] = ""


class JudgmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    genre: Genre = ""
    doc_id: int = Field(ge=0)
    grade: int = Field(ge=0, le=3)


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN
        ),
    ]
    q: QueryText = ""
    genre: Genre = ""
    trend: list[Hashtag] = Field(default_factory=list, max_length=MAX_TRENDS)
    limit: int = Field(default=20, ge=1, le=100)
    replace: bool = False


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    force: bool = False


# Outputs ---------------------------------------------------------------------------------------------


class Contribution(BaseModel):
    label: str
    hashtag: str
    trend_score: float
    weight: float
    contribution: float  # weight × trend_score


class HitOut(BaseModel):
    rank: int
    id: int
    title: str
    release_year: int | None
    genres: list[str]
    overview: str
    score: float
    text_score: float
    contributions: list[Contribution]
    grade: int | None


class QueryOut(BaseModel):
    q: str
    genre: str
    trends: list[str]  # the hashtags that boosted this ranking ([] = no boost)
    key: str  # what judgments are stored under ("" = nothing to judge: no text and no trend)


class SearchOut(BaseModel):
    query: QueryOut
    total: int
    offset: int
    limit: int
    boost_weight: float
    hits: list[HitOut]
    warnings: list[str]


class QueryMetrics(BaseModel):
    key: str
    genre: str
    ndcg_at_10: float | None
    p_at_10: float | None
    judged_at_10: float | None
    judged_in_top: int
    judgments: int
    relevant: int


class TrendOut(BaseModel):
    hashtag: str
    label: str
    score: float
    count: int
    baseline: float
    history: list[int]


class CompareRow(BaseModel):
    rank: int
    id: int
    title: str
    score: float
    grade: int | None
    other_rank: int | None  # rank on the other side (None = not in its list)
    movement: int | None  # positive = higher here than on the other side


class CompareSide(BaseModel):
    name: str
    query: QueryOut
    metrics: QueryMetrics
    rows: list[CompareRow]


class CompareOut(BaseModel):
    mode: str
    left: CompareSide
    right: CompareSide


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    components: dict[str, str]  # "ok" or "degraded: why" per component (search, trends, classifier)


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
        url = self.settings.resolved_judgments_url
        store: JudgmentStore = self._get("judgments store", lambda: open_judgment_store(url))
        return store

    @property
    def snapshots(self) -> SnapshotStore:
        path = self.settings.state_dir / "workbench" / "snapshots.db"
        store: SnapshotStore = self._get("snapshot store", lambda: SnapshotStore(path))
        return store

    def candidate(self, name: str) -> ScoringLoop:
        """A scoring loop whose search boosts with model ``name`` (stored scores; a token holder's scored)."""
        try:
            version = Registry.from_settings(self.settings).resolve(name)
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
        """Load the search service and its classifier, so the first search does not wait for them."""
        try:
            self.loop.classifier()
        except Exception as exc:
            log.warning("warm-up failed: %s", exc)

    def forget_service(self) -> None:
        """Drop the search service so the next call reopens it (after a promotion changed the champion)."""
        with self._lock:
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


# Ranking helpers -------------------------------------------------------------------------------------


def judgment_key(q: str, trends: Sequence[str]) -> str:
    """Judgments of a text query are stored under its text, those of a trend-only query under the hashtag."""
    text = " ".join(q.split())
    return text or " ".join(trends)


def hashtag_words(trends: Sequence[str]) -> str:
    from freshrank.evaluate.runner import hashtag_words as words

    return " ".join(words(t) for t in trends)


def _search(
    wb: Workbench,
    caller: Caller,
    q: str,
    genre: str,
    trends: list[str] | None,
    limit: int,
    offset: int = 0,
    loop: ScoringLoop | None = None,
) -> SearchPage:
    loop = loop or wb.loop
    try:
        adhoc = _unstored_scores(wb, loop, caller, trends)
        page = loop.reader.search(q, genre or None, trends, limit=limit, offset=offset, adhoc=adhoc)
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


def _live_hashtags(wb: Workbench) -> list[str]:
    """The hashtags trending now; [] when the trend store is down (search then warns and boosts less)."""
    try:
        return [t.hashtag for t in wb.trends.top(wb.settings.trends.top_n)]
    except Exception as exc:
        log.warning("trend store unavailable: %s", exc)
        return []


def _label_map(wb: Workbench, picked: Sequence[str]) -> dict[str, str]:
    """label -> hashtag of the current and the picked trends (to show ``#SharkWeek``, not ``shark week``)."""
    try:
        labels = {t.label: t.hashtag for t in wb.trends.top(None)}
    except Exception:  # the trend store is down: labels show as they are
        labels = {}
    return {**labels, **{hashtag_label(h): h for h in picked}}


def _qrels(wb: Workbench, key: str, genre: str) -> dict[int, int]:
    if not key:
        return {}
    try:
        return {j.doc_id: j.grade for j in wb.judgments.judgments(trend=key, genre=genre)}
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"judgments store failed: {exc}") from exc


def _hit_out(
    rank: int, hit: SearchHit, weight: float, labels: dict[str, str], qrels: dict[int, int]
) -> HitOut:
    contributions = [
        Contribution(
            label=label,
            hashtag=labels.get(label, label),
            trend_score=score,
            weight=weight,
            contribution=weight * score,
        )
        for label, score in hit.trend_scores.items()
    ]
    return HitOut(
        rank=rank,
        id=hit.id,
        title=hit.title,
        release_year=hit.release_year,
        genres=list(hit.genres),
        overview=hit.overview,
        score=hit.score,
        text_score=hit.text_score,
        contributions=contributions,
        grade=qrels.get(hit.id),
    )


def _metrics(key: str, genre: str, ranking: list[int], qrels: dict[int, int]) -> QueryMetrics:
    judged = qrels if key else {}
    if not key:
        return QueryMetrics(
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
    """Trends that boost: ``request`` for the service (None = the live trends), ``shown`` for the page."""

    request: list[str] | None
    shown: list[str]


def _boost_for(wb: Workbench, params: SearchParams) -> Boost:
    if not params.boost:
        return Boost([], [])
    picked = list(dict.fromkeys(params.trend))
    return Boost(picked, picked) if picked else Boost(None, _live_hashtags(wb))


def _search_out(wb: Workbench, caller: Caller, params: SearchParams) -> SearchOut:
    boost = _boost_for(wb, params)
    key = judgment_key(params.q, params.trend)
    page = _search(wb, caller, params.q, params.genre, boost.request, params.limit, params.offset)
    warnings = list(page.warnings)
    try:
        qrels = _qrels(wb, key, params.genre)
    except Unavailable as exc:  # search goes on without the grades
        qrels = {}
        warnings.append(f"{exc}: grades are not shown")
    weight = wb.settings.search.boost_weight
    labels = _label_map(wb, params.trend)
    hits = [
        _hit_out(params.offset + i, hit, weight, labels, qrels) for i, hit in enumerate(page.hits, start=1)
    ]
    query = QueryOut(q=params.q, genre=params.genre, trends=boost.shown, key=key)
    return SearchOut(
        query=query,
        total=page.total,
        offset=params.offset,
        limit=params.limit,
        boost_weight=weight,
        hits=hits,
        warnings=warnings,
    )


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
        name=name, query=query, metrics=_metrics(query.key, query.genre, ranking, qrels), rows=rows
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


def _compare_baseline(wb: Workbench, caller: Caller, params: CompareParams) -> CompareOut:
    """Boosted ranking against the lexical baseline (text, or the hashtags' words, with no boost)."""
    boost = _boost_for(wb, params)
    key = judgment_key(params.q, params.trend)
    qrels = _qrels(wb, key, params.genre)
    base_text = params.q or hashtag_words(params.trend)
    base = _search(wb, caller, base_text, params.genre, [], params.limit)
    boosted = _search(wb, caller, params.q, params.genre, boost.request, params.limit)
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


def _compare_models(wb: Workbench, caller: Caller, params: CompareParams) -> CompareOut:
    """The champion's boosted ranking against a candidate model's (its scores computed on demand)."""
    if not params.candidate:
        raise HTTPException(422, "mode=models needs candidate=<model version>")
    boost = _boost_for(wb, params)
    key = judgment_key(params.q, params.trend)
    qrels = _qrels(wb, key, params.genre)
    candidate_loop = wb.candidate(params.candidate)
    champion = _search(wb, caller, params.q, params.genre, boost.request, params.limit)
    candidate = _search(wb, caller, params.q, params.genre, boost.request, params.limit, loop=candidate_loop)
    query = QueryOut(q=params.q, genre=params.genre, trends=boost.shown, key=key)
    left = _side(f"serving ({_serving_model(wb)})", query, champion, qrels)
    right = _side(f"candidate ({params.candidate})", query, candidate, qrels)
    _link_movement(left, right)
    return CompareOut(mode="models", left=left, right=right)


def _champion(wb: Workbench) -> str:
    return Registry.from_settings(wb.settings).champion()


def _serving_model(wb: Workbench) -> str:
    """The model the search service boosts with: the configured classifier, or the registry's champion."""
    name = wb.settings.classifier.name
    return f"champion {_champion(wb)}" if name == CHAMPION else name


def _history(trend: Trend) -> list[int]:
    """The trend's per-bin counts, oldest first, for its sparkline."""
    return [int(c) for c in trend.history][-SPARKLINE_POINTS:]


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


# Security --------------------------------------------------------------------------------------------


def _holds_token(settings: Settings, authorization: str | None) -> bool:
    expected = settings.serve.api_token
    scheme, _, given = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not given.strip():
        return False
    return secrets.compare_digest(given.strip().encode(), expected.encode())


def _caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The client's address and whether it sent the API token (searches then may score new labels)."""
    settings: Settings = request.app.state.workbench.settings
    client = request.client.host if request.client else "unknown"
    return Caller(client, _holds_token(settings, authorization))


Who = Annotated[Caller, Depends(_caller)]


def _token_guard(settings: Settings) -> Callable[[str | None], None]:
    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = settings.serve.api_token
        if not expected:
            raise HTTPException(
                403, "write actions are disabled: no API token is configured (set FRESHRANK_SERVE__API_TOKEN)"
            )
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise HTTPException(
                401,
                "this action needs the API token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not secrets.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(401, "wrong API token", headers={"WWW-Authenticate": "Bearer"})

    return require_token


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc and loc[0] in ("query", "body", "path", "header"):  # where it came from, not which field
            loc = loc[1:]
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where or 'request'}: {error['msg']}")
    return "; ".join(parts)


# Routes ----------------------------------------------------------------------------------------------


def _read_routes(wb: Workbench) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/search", response_model=SearchOut)
    def search(params: Annotated[SearchParams, Query()], caller: Who) -> SearchOut:
        """Ranked movies with the explanation of each score: text relevance plus weight × trend score."""
        return _search_out(wb, caller, params)

    @router.get("/query-metrics", response_model=QueryMetrics)
    def query_metrics(params: Annotated[SearchParams, Query()], caller: Who) -> QueryMetrics:
        """nDCG@10, P@10 and the judged share of the top 10 of this query's ranking."""
        boost = _boost_for(wb, params)
        key = judgment_key(params.q, params.trend)
        page = _search(wb, caller, params.q, params.genre, boost.request, K)
        return _metrics(key, params.genre, [hit.id for hit in page.hits], _qrels(wb, key, params.genre))

    @router.get("/trends", response_model=list[TrendOut])
    def trends(n: Annotated[int, Query(ge=1, le=100)] = 20) -> list[TrendOut]:
        """The current top trends with their window counts for a sparkline."""
        try:
            top = wb.trends.top(n)
        except Unavailable:
            raise
        except Exception as exc:
            raise Unavailable(f"trend store failed: {exc}") from exc
        return [
            TrendOut(
                hashtag=t.hashtag,
                label=t.label,
                score=t.score,
                count=t.count,
                baseline=t.baseline,
                history=_history(t),
            )
            for t in top
        ]

    @router.get("/genres", response_model=list[str])
    def genres() -> list[str]:
        """The genres of the indexed catalogue, for the filter."""
        return _genres(wb)

    @router.get("/compare", response_model=CompareOut)
    def compare(params: Annotated[CompareParams, Query()], caller: Who) -> CompareOut:
        """Two rankings side by side: baseline vs boosted, or champion vs a candidate model."""
        if params.mode == "models":
            return _compare_models(wb, caller, params)
        return _compare_baseline(wb, caller, params)

    @router.get("/snapshots")
    def list_snapshots() -> list[dict[str, Any]]:
        return [_snapshot_summary(s) for s in wb.snapshots.list()]

    @router.get("/snapshots/diff")
    def diff_snapshots(
        a: Annotated[str, Query(max_length=MAX_NAME_CHARS)],
        b: Annotated[str, Query(max_length=MAX_NAME_CHARS)],
    ) -> dict[str, Any]:
        diff = wb.snapshots.diff(a, b)
        return {
            "a": _snapshot_summary(diff.a),
            "b": _snapshot_summary(diff.b),
            "metric_deltas": diff.metric_deltas,
            "moves": [{**asdict(m), "status": m.status, "movement": m.movement} for m in diff.moves],
        }

    @router.get("/snapshots/{name}")
    def get_snapshot(name: Annotated[str, PathParam(max_length=MAX_NAME_CHARS)]) -> dict[str, Any]:
        return asdict(wb.snapshots.get(name))

    @router.get("/models")
    def models() -> dict[str, Any]:
        registry = Registry.from_settings(wb.settings)
        versions = [EMBEDDING, *registry.versions()]
        cards = {v: registry.card(v).to_dict() for v in versions if registry.has_card(v)}
        return {
            "champion": registry.champion(),
            "versions": versions,
            "cards": cards,
            "history": [asdict(e) for e in registry.history()],
        }

    @router.get("/monitor")
    def monitor() -> dict[str, Any]:
        """The latest freshness decision (ok / reclassify / retrain) with its reasons."""
        return _latest_decision(wb)

    return router


def _genres(wb: Workbench) -> list[str]:
    backend = wb.service.backend
    listed = getattr(backend, "genres", None)
    try:
        if callable(listed):
            return sorted(str(g) for g in listed())
        from freshrank.catalog import load_catalog

        return sorted({g for m in load_catalog(wb.settings.movies_path).movies for g in m.genres})
    except Exception as exc:
        raise Unavailable(f"genres unavailable: {exc}") from exc


def _health(wb: Workbench) -> HealthOut:
    try:
        components = {name: str(state) for name, state in wb.loop.health().items()}
    except Exception as exc:  # the service cannot even be opened: nothing answers
        return HealthOut(status="down", components={"search": f"down: {exc}"})
    healthy = all(state == "ok" for state in components.values())
    return HealthOut(status="ok" if healthy else "degraded", components=components)


def _snapshot_summary(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "name": snapshot.name,
        "created_at": snapshot.created_at,
        "query": asdict(snapshot.query),
        "metrics": snapshot.metrics,
        "size": len(snapshot.ranking),
    }


def _latest_decision(wb: Workbench) -> dict[str, Any]:
    """The monitor's decision on the live system, computed at most every MONITOR_TTL seconds."""
    with wb.monitor_lock:
        cached = wb.monitor_cache
        if cached is not None and time.monotonic() - cached[0] < MONITOR_TTL:
            return cached[1]
        decision = _decide(wb)
        wb.monitor_cache = (time.monotonic(), decision)
        return decision


def _decide(wb: Workbench) -> dict[str, Any]:
    from freshrank.monitor.freshness import Thresholds, decide
    from freshrank.monitor.live import MonitorUnavailable, encoder_embed, gather, publish

    try:
        data, warnings, classifier = gather(wb.settings, wb.loop)
    except MonitorUnavailable as exc:
        return {"decision": None, "reasons": [], "message": f"monitor unavailable: {exc}"}
    report = decide(data, Thresholds(), encoder_embed(classifier))
    publish(report, data)
    return {
        **report.to_json(),
        "warnings": warnings,
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_routes(wb: Workbench, guard: Callable[..., None]) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(guard)])

    @router.post("/judgments")
    def add_judgment(body: JudgmentIn) -> dict[str, Any]:
        """Save one grade at once (who = workbench); the store keeps every change with who and when."""
        judgment = Judgment(trend=body.query, genre=body.genre, doc_id=body.doc_id, grade=body.grade)
        try:
            result = wb.judgments.add([judgment], who=WHO, source="workbench")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"saved": True, "added": result.added, "changed": result.changed, "judgment": asdict(judgment)}

    @router.post("/snapshots", status_code=201)
    def save_snapshot(body: SnapshotIn, request: Request) -> dict[str, Any]:
        params = SearchParams(q=body.q, genre=body.genre, trend=body.trend, limit=body.limit)
        client = request.client.host if request.client else "unknown"
        out = _search_out(wb, Caller(client, may_write=True), params)
        metrics = _metrics(
            out.query.key, body.genre, [h.id for h in out.hits], _qrels(wb, out.query.key, body.genre)
        )
        snapshot = Snapshot(
            name=body.name,
            query=SnapshotQuery(
                text=body.q, trends=tuple(out.query.trends), genre=body.genre, model=_safe_champion(wb)
            ),
            ranking=[RankedDoc(h.id, h.title, h.score, h.grade) for h in out.hits],
            metrics={k: v for k, v in metrics.model_dump().items() if isinstance(v, float)},
        )
        try:
            saved = wb.snapshots.save(snapshot, replace=body.replace)
        except SnapshotExists as exc:
            raise HTTPException(409, str(exc)) from exc
        return _snapshot_summary(saved)

    @router.delete("/snapshots/{name}", status_code=204)
    def delete_snapshot(name: str) -> Response:
        wb.snapshots.delete(name)
        return Response(status_code=204)

    @router.post("/refresh")
    def refresh() -> dict[str, Any]:
        """Score the trending labels the current model has not scored yet."""
        report = wb.loop.refresh()
        wb.monitor_cache = None  # the decision may change now that new labels are scored
        return {"refreshed": True, "report": _plain(report)}

    @router.post("/models/promote")
    def promote(body: PromoteIn) -> dict[str, Any]:
        """Gate the version against the champion; promote it when it passes (or when forced)."""
        from freshrank.train.lifecycle import promote as promote_model

        result = promote_model(wb.settings, body.version, force=body.force)
        wb.forget_service()
        return dict(_plain(result))

    @router.post("/models/rollback")
    def rollback() -> dict[str, Any]:
        from freshrank.train.lifecycle import rollback as rollback_model

        result = rollback_model(wb.settings)
        wb.forget_service()
        return dict(_plain(result))

    return router


def _safe_champion(wb: Workbench) -> str:
    try:
        return _champion(wb)
    except Exception:
        return ""


def _ops_routes(wb: Workbench) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    def health() -> JSONResponse:
        """Per component ``ok`` or ``degraded: why``; overall ok/degraded, or down (503) if nothing opens."""
        report = _health(wb)
        return JSONResponse(report.model_dump(), status_code=503 if report.status == "down" else 200)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    return router


# App -------------------------------------------------------------------------------------------------


def _backend_name(settings: Settings) -> str:
    return settings.resolved_search_url.split(":", 1)[0]


def _add_middleware(app: FastAPI, backend: str) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        route = request.scope.get("route")
        path = getattr(route, "path", None)
        if path and path.startswith("/api/"):
            SEARCH_LATENCY.labels(backend=backend, endpoint=path).observe(time.perf_counter() - started)
            SEARCH_REQUESTS.labels(backend=backend, status=str(response.status_code)).inc()
        return response


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is not echoed back: it may be 10,000 characters of somebody's attack.
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(SnapshotNotFound)
    async def missing_snapshot(request: Request, exc: SnapshotNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(RegistryError)
    @app.exception_handler(LifecycleError)
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        status = 404 if str(exc).startswith("no model version") else 409
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)


def create_app(settings: Settings, *, warm_up: bool = False) -> FastAPI:
    """The API with the workbench page at ``/``, ``/health`` and Prometheus ``/metrics``.

    ``warm_up`` loads the classifier in the background at start-up, so the first search does not wait.
    """
    wb = Workbench(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wb.open_stores()
        if warm_up:
            threading.Thread(target=wb.warm_up, name="workbench-warm-up", daemon=True).start()
        yield
        wb.close()

    app = FastAPI(
        title="freshrank",
        summary="Trend-boosted movie search and the relevance workbench",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.workbench = wb
    app.include_router(_read_routes(wb))
    app.include_router(_write_routes(wb, _token_guard(settings)))
    app.include_router(_ops_routes(wb))
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    _add_middleware(app, _backend_name(settings))
    _add_error_handlers(app)
    return app


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API and the workbench with uvicorn until interrupted."""
    import uvicorn

    if not settings.serve.api_token:
        log.warning(
            "no API token configured: judging, snapshots and operations are disabled "
            "(set FRESHRANK_SERVE__API_TOKEN)"
        )
    if not _is_loopback(host):
        log.warning("listening on %s: the API is reachable from other machines", host)
    log.info("workbench on http://%s:%d/", host, port)
    uvicorn.run(
        create_app(settings, warm_up=True), host=host, port=port, log_level="info", server_header=False
    )
