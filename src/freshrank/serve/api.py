"""The search API and the relevance workbench page: search with explanations, judge, compare, operate.

Reading is public; every write (judgments, snapshots, refresh, promote, rollback) needs the bearer token
``settings.serve.api_token`` and is refused while none is configured. Searches read only: a trend label
without stored scores is scored through the loop (stored) for a token holder, into the bounded in-memory
ad-hoc cache for anyone else (rate-limited per client: 429 with Retry-After). ``create_app`` builds the app,
``run`` serves it with uvicorn (``freshrank serve api``).

The pieces: ``schemas`` (request/response models), ``workbench`` (components and rankings), ``security``
(token, caller), ``routes`` (the routers); this module assembles the app.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from freshrank.classify.registry import RegistryError
from freshrank.config import Settings
from freshrank.metrics import SEARCH_LATENCY, SEARCH_REQUESTS, multiprocess_metrics
from freshrank.serve.docs import docs_router
from freshrank.serve.limits import ASGIApp, Message, Receive, RequestLimits, Scope, Send
from freshrank.serve.memory import Trimmer, limit_arenas
from freshrank.serve.routes import WEB_DIR, ops_routes, read_routes, write_routes
from freshrank.serve.security import public_message, token_guard, validation_message
from freshrank.serve.snapshots import SnapshotNotFound
from freshrank.serve.workbench import Unavailable, Workbench
from freshrank.train.lifecycle import LifecycleError

log = logging.getLogger(__name__)

WORKER_HEALTHCHECK_S = 30  # uvicorn kills a worker that answers no ping this long (its 5 s: too short, busy)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_SECURITY_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

# App -------------------------------------------------------------------------------------------------


def _backend_name(settings: Settings) -> str:
    return settings.resolved_search_url.split(":", 1)[0]


class Observe:
    """ASGI middleware: the security headers on every answer, latency and status of every ``/api/`` route.

    A plain ASGI wrapper, not Starlette's ``BaseHTTPMiddleware`` (which runs the app in a task behind a
    memory stream: ~10 % of a search's CPU under load)."""

    def __init__(self, app: ASGIApp, backend: str) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in _SECURITY_HEADERS if header[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, secured)
        path = getattr(scope.get("route"), "path", None)
        if path and path.startswith("/api/"):
            SEARCH_LATENCY.labels(backend=self.backend, endpoint=path).observe(time.perf_counter() - started)
            SEARCH_REQUESTS.labels(backend=self.backend, status=str(status)).inc()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is not echoed back: it may be 10,000 characters of somebody's attack.
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": public_message(str(exc))}, status_code=503)

    @app.exception_handler(SnapshotNotFound)
    async def missing_snapshot(request: Request, exc: SnapshotNotFound) -> JSONResponse:
        return JSONResponse({"detail": public_message(str(exc))}, status_code=404)

    @app.exception_handler(RegistryError)
    @app.exception_handler(LifecycleError)
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        status = 404 if str(exc).startswith("no model version") else 409
        return JSONResponse({"detail": public_message(str(exc))}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = public_message(exc.detail) if isinstance(exc.detail, str) else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": public_message(str(exc))}, status_code=422)


def create_app(settings: Settings, *, warm_up: bool = False) -> FastAPI:
    """The API with the workbench page at ``/``, ``/health`` and Prometheus ``/metrics``.

    ``warm_up`` loads the classifier in the background at start-up, so the first search does not wait.
    """
    wb = Workbench(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_arenas(settings.serve.malloc_arenas)  # before the request threads start
        trimmer = Trimmer(settings.serve.malloc_trim_seconds).start()
        wb.open_stores()
        if warm_up:
            threading.Thread(target=wb.warm_up, name="workbench-warm-up", daemon=True).start()
        yield
        trimmer.stop()
        wb.close()

    app = FastAPI(
        title="freshrank",
        summary="Trend-boosted movie search and the relevance workbench",
        docs_url=None,  # served by docs_router, under its own Content-Security-Policy
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.workbench = wb
    app.include_router(read_routes(wb))
    app.include_router(write_routes(wb, token_guard(settings)))
    app.include_router(ops_routes(wb))
    app.include_router(docs_router("/api/docs", "/api/openapi.json", app.title))
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.add_middleware(Observe, backend=_backend_name(settings))
    app.add_middleware(RequestLimits, max_body_bytes=settings.serve.max_body_bytes)  # outermost
    _add_error_handlers(app)
    return app


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def worker_count(settings: Settings) -> int:
    """``serve.workers``, or one server process per core this process may run on when it is 0."""
    return settings.serve.workers or len(os.sched_getaffinity(0))


def worker_app() -> FastAPI:
    """The app of one worker process (``uvicorn --workers``): settings from the environment, as its parent;
    logging as the CLI sets it up (a spawned process starts without it)."""
    from freshrank.console import setup_logging

    setup_logging()
    return create_app(Settings(), warm_up=True)


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int | None = None) -> None:
    """Serve the API and the workbench with uvicorn until interrupted, in ``workers`` server processes.

    Several workers share the listening socket (the kernel spreads connections); each opens its own stores
    and read-only search connections, and Prometheus metrics are collected across them (multiprocess mode).
    What each worker keeps in memory is listed in docs/scale-out.md ("Several server processes").
    """
    import uvicorn

    count = workers or worker_count(settings)
    _warn_about(settings, host)
    log.info("workbench on http://%s:%d/ (%d server process%s)", host, port, count, "es" * (count > 1))
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info", "server_header": False}
    if count == 1:
        uvicorn.run(create_app(settings, warm_up=True), **options)
        return
    Workbench(settings).open_stores()  # the judgments store's migration runs here once, not in every worker
    with multiprocess_metrics():
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            workers=count,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
            **options,
        )


def _warn_about(settings: Settings, host: str) -> None:
    if not settings.serve.api_token:
        log.warning(
            "no API token configured: judging, snapshots and operations are disabled "
            "(set FRESHRANK_SERVE__API_TOKEN)"
        )
    if not _is_loopback(host):
        log.warning("listening on %s: the API is reachable from other machines", host)
