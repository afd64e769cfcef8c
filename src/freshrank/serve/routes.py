"""The web API's routes: public reads, token-guarded writes, and operations (health, metrics, page)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from freshrank.classify.registry import EMBEDDING, RegistryReader
from freshrank.evaluate.base import Judgment, QueryId
from freshrank.evaluate.store import StoreUnavailable
from freshrank.metrics import exposition
from freshrank.serve.schemas import (
    CompareOut,
    CompareParams,
    HealthOut,
    JudgmentIn,
    K,
    PromoteIn,
    QueryMetrics,
    SearchOut,
    SearchParams,
    SnapshotIn,
    TrendOut,
)
from freshrank.serve.security import Who
from freshrank.serve.snapshots import (
    MAX_NAME_CHARS,
    RankedDoc,
    Snapshot,
    SnapshotExists,
    SnapshotQuery,
)
from freshrank.serve.workbench import (
    Caller,
    Unavailable,
    Workbench,
    boost_for,
    champion_version,
    compare_baseline,
    compare_models,
    judged_query,
    plain,
    query_figures,
    query_qrels,
    rank_page,
    search_answer,
    search_out,
    trend_history,
)

WEB_DIR = Path(__file__).parent / "web"
WHO = "workbench"
MONITOR_TTL = 30.0  # seconds a monitor decision is served before it is computed again

# Routes ----------------------------------------------------------------------------------------------


def read_routes(wb: Workbench) -> APIRouter:
    router = APIRouter(prefix="/api")

    searching = anyio.CapacityLimiter(wb.settings.serve.search_threads)

    @router.get("/search", response_model=SearchOut)
    async def search(params: Annotated[SearchParams, Query()], caller: Who) -> Response:
        """Ranked movies with the explanation of each score: text relevance plus weight × trend score."""
        # A few threads of its own (serve.search_threads): forty searching threads only take the GIL from
        # one another, and a slow store holds these, not the threads of /health and the other routes.
        answer = await anyio.to_thread.run_sync(search_answer, wb, caller, params, limiter=searching)
        return _json(answer)

    @router.get("/query-metrics", response_model=QueryMetrics)
    def query_metrics(params: Annotated[SearchParams, Query()], caller: Who) -> QueryMetrics:
        """nDCG@10, P@10 and the judged share of the top 10 of this query's ranking."""
        boost = boost_for(wb, params)
        judged = judged_query(params.q, params.trend, params.genre)
        page = rank_page(wb, caller, params.q, params.genre, boost.request, K, crowd=boost.live)
        return query_figures(judged, [hit.id for hit in page.hits], query_qrels(wb, judged))

    @router.get("/trends", response_model=list[TrendOut])
    def trends(n: Annotated[int, Query(ge=1, le=100)] = 20) -> list[TrendOut]:
        """The current top trends with their window counts for a sparkline."""
        with _unavailable_on_failure("trend store failed"):
            top = wb.trends.top(n)
        return [
            TrendOut(
                hashtag=t.hashtag,
                label=t.label,
                score=t.score,
                count=t.count,
                baseline=t.baseline,
                history=trend_history(t),
                authors=t.authors,
                expected=t.expected,
                evidence=t.evidence,
                p_value=t.p_value,
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
            return compare_models(wb, caller, params)
        return compare_baseline(wb, caller, params)

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
        registry = RegistryReader.from_settings(wb.settings)
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


@contextmanager
def _unavailable_on_failure(what: str) -> Iterator[None]:
    """Any failure of a component's call raised as ``Unavailable`` (503 with the reason), not a 500."""
    try:
        yield
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"{what}: {exc}") from exc


def _json(answer: dict[str, Any]) -> Response:
    """An answer built here in its response model's shape, serialised as it is: FastAPI would validate it
    first, in a second trip through the thread pool (``tests/serve/test_api.py`` checks the shape)."""
    return Response(orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


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
    components["judgments"] = wb.judgments_state()
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


RESEND = "Send it again when the store is back (saving the same grade twice changes nothing)"


def write_routes(wb: Workbench, guard: Callable[..., None]) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(guard)])

    @router.post("/judgments")
    def add_judgment(body: JudgmentIn) -> dict[str, Any]:
        """Save one grade at once (who = workbench); the store keeps every change with who and when."""
        judgment = Judgment(trend=body.query, genre=body.genre, doc_id=body.doc_id, grade=body.grade)
        try:
            result = wb.judgments.add([judgment], who=WHO, source="workbench")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        except (
            Unavailable,
            StoreUnavailable,
        ) as exc:  # nothing kept here: the caller is told to send it again
            raise Unavailable(f"judgment not saved: {exc}. {RESEND}") from exc
        finally:
            wb.forget_qrels()
        return {"saved": True, "added": result.added, "changed": result.changed, "judgment": asdict(judgment)}

    @router.post("/snapshots", status_code=201)
    def save_snapshot(body: SnapshotIn, request: Request) -> dict[str, Any]:
        params = SearchParams(q=body.q, genre=body.genre, trend=body.trend, limit=body.limit)
        client = request.client.host if request.client else "unknown"
        out = search_out(wb, Caller(client, may_write=True), params)
        judged = QueryId(out.query.key, body.genre)
        metrics = query_figures(judged, [h.id for h in out.hits], query_qrels(wb, judged))
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
        with _unavailable_on_failure("refresh failed"):  # the search engine down or hung: 503, not a 500
            report = wb.loop.refresh()
        wb.monitor_cache = None  # the decision may change now that new labels are scored
        return {"refreshed": True, "report": plain(report)}

    @router.post("/models/promote")
    def promote(body: PromoteIn) -> dict[str, Any]:
        """Gate the version against the champion; promote it when it passes (or when forced)."""
        from freshrank.train.lifecycle import promote as promote_model

        result = promote_model(wb.settings, body.version, force=body.force)
        wb.forget_service()
        return dict(plain(result))

    @router.post("/models/rollback")
    def rollback() -> dict[str, Any]:
        from freshrank.train.lifecycle import rollback as rollback_model

        result = rollback_model(wb.settings)
        wb.forget_service()
        return dict(plain(result))

    return router


def _safe_champion(wb: Workbench) -> str:
    try:
        return champion_version(wb)
    except Exception:
        return ""


def ops_routes(wb: Workbench) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    def health() -> JSONResponse:
        """Per component ``ok`` or ``degraded: why``; overall ok/degraded, or down (503) if nothing opens."""
        report = _health(wb)
        return JSONResponse(report.model_dump(), status_code=503 if report.status == "down" else 200)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    return router
