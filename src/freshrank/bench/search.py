"""Search speed with 20 trending labels on the full catalogue, each figure against the no-boost query of the
same kind measured in the same run (issue 14).

* ``sqlite_*``: embedded SQLite in process, a mixed query set (empty, one word, several words; with and
  without a genre; pages 1, 11 and 101), ``ROUNDS`` rounds in random order; p50/p99 boosted vs no boost.
* ``api_*``: ``freshrank serve api`` on that database with 20 live trends in its trend store, 20 concurrent
  clients for ``API_SECONDS`` each (boosted, then ``boost=false``): p50/p99, errors, requests/s, the server's
  and the clients' CPU. The clients are ``wrk`` (``bench/load.py``); ``api_httpx_*`` repeats the boosted run
  with asyncio + httpx clients in this process, which take ~1 ms of CPU per request from the server's cores
  (the only clients when wrk is not installed).
* ``opensearch_*``: index the catalogue, write each label's scores (``put_scores``: bulk of the positive
  scores, one refresh, then the registry flip), search p99 boosted vs no boost over the same query set.
* ``fresh_trend_*``: with the embedding classifier fitted (catalogue encoded, cached under the cache dir), a
  new hashtag published in the trend store → ``ScoringLoop.refresh`` (scores the one new label) → a search
  whose top hit carries its boost, on SQLite and on OpenSearch.

Trend scores are calibrated synthetic scores (``bench/searchdata.py``: the production calibration over a
noisy baseline plus a lexical signal, ~2.5 % non-zero per label) so the bench needs no model except for the
fresh-trend figure. Every figure is printed with the load average (2 shared cores).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshrank.bench.load import (
    client_figures,
    percentile,
    run_wrk,
    search_paths,
    server_cpu,
    wrk_missing,
    wrk_path,
)
from freshrank.bench.searchdata import TREND_LABELS, TrendScores
from freshrank.bench.servers import free_port
from freshrank.catalog.loader import load_catalog
from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.console import err
from freshrank.search.base import SearchBackend, SearchRequest

TEXTS = ("", "love", "santa", "war", "love story", "haunted house", "space war", "the dark knight returns")
GENRES = (None, "Family", "Drama")
OFFSETS = (0, 100, 1000)
ROUNDS = 8
API_SECONDS = 30.0
API_CLIENTS = 20
OPENSEARCH = os.environ.get("FRESHRANK_BENCH_OPENSEARCH", "127.0.0.1:9200")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def mixed_requests(version: str, labels: tuple[str, ...]) -> list[SearchRequest]:
    return [
        SearchRequest(text=t, genre=g, labels=labels, model_version=version, limit=10, offset=o)
        for t in TEXTS
        for g in GENRES
        for o in OFFSETS
    ]


def latencies(backend: SearchBackend, version: str, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Milliseconds per search, boosted and not, interleaved in one random order (same load for both)."""
    cases = [("boosted", r) for r in mixed_requests(version, TREND_LABELS)]
    cases += [("plain", r) for r in mixed_requests(version, ())]
    for _, request in cases:  # warm-up: page cache, prepared statements, the summed boosts
        backend.search(request)
    out: dict[str, list[float]] = {"boosted": [], "plain": []}
    rng = random.Random(14)
    for _ in range(rounds):
        rng.shuffle(cases)
        for kind, request in cases:
            started = time.perf_counter()
            backend.search(request)
            out[kind].append((time.perf_counter() - started) * 1000)
    return out


def summary(prefix: str, samples: dict[str, list[float]]) -> dict[str, Any]:
    boosted, plain = samples["boosted"], samples["plain"]
    figures = {
        f"{prefix}_searches": len(boosted) + len(plain),
        f"{prefix}_p50_ms": round(percentile(boosted, 0.5), 2),
        f"{prefix}_p99_ms": round(percentile(boosted, 0.99), 2),
        f"{prefix}_noboost_p50_ms": round(percentile(plain, 0.5), 2),
        f"{prefix}_noboost_p99_ms": round(percentile(plain, 0.99), 2),
        f"{prefix}_p99_vs_noboost": round(percentile(boosted, 0.99) / max(percentile(plain, 0.99), 1e-9), 2),
        f"{prefix}_p50_vs_noboost": round(percentile(boosted, 0.5) / max(percentile(plain, 0.5), 1e-9), 2),
        f"{prefix}_load": _load(),
    }
    err.print(
        f"{prefix}: p99 {figures[f'{prefix}_p99_ms']} ms boosted vs {figures[f'{prefix}_noboost_p99_ms']} ms "
        f"no boost (p50 {figures[f'{prefix}_p50_ms']} vs {figures[f'{prefix}_noboost_p50_ms']}), "
        f"load {figures[f'{prefix}_load']}"
    )
    return figures


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def write_labels(backend: SearchBackend, version: str, scores: TrendScores) -> list[float]:
    """Seconds per ``put_scores`` of each trend label (every movie's score handed over, as refresh does)."""
    return [_timed(backend.put_scores, version, label, scores.scores(label)) for label in TREND_LABELS]


def bench_sqlite(movies: list[Movie], scores: TrendScores, version: str, path: Path) -> dict[str, Any]:
    from freshrank.search.sqlite import SqliteBackend

    backend = SqliteBackend(f"sqlite:///{path}")
    index_s = _timed(backend.index, movies)
    writes = write_labels(backend, version, scores)
    figures = {
        "sqlite_index_s": round(index_s, 2),
        "sqlite_label_write_s_median": round(statistics.median(writes), 3),
        "sqlite_label_write_s_max": round(max(writes), 3),
    }
    figures.update(summary("sqlite", latencies(backend, version)))
    backend.close()
    return figures


def bench_opensearch(movies: list[Movie], scores: TrendScores, version: str) -> dict[str, Any]:
    from freshrank.search.opensearch import OpenSearchBackend

    backend = OpenSearchBackend(f"opensearch://{OPENSEARCH}/freshrank-bench-{uuid.uuid4().hex[:10]}")
    try:
        index_s = _timed(backend.index, movies)
        writes = write_labels(backend, version, scores)
        figures: dict[str, Any] = {
            "opensearch_index_s": round(index_s, 2),
            "opensearch_label_write_s_median": round(statistics.median(writes), 3),
            "opensearch_label_write_s_max": round(max(writes), 3),
            "opensearch_label_write_refresh": "one explicit refresh after the bulk, registry refresh=true",
            "opensearch_write_load": _load(),
        }
        err.print(
            f"opensearch: index {index_s:.1f}s, label write median {statistics.median(writes):.2f}s "
            f"max {max(writes):.2f}s, load {_load()}"
        )
        figures.update(summary("opensearch", latencies(backend, version, rounds=3)))
        return figures
    finally:
        backend.drop()
        backend.close()


# The API ----------------------------------------------------------------------------------------------


async def _clients(base: str, params: list[dict[str, Any]], seconds: float) -> tuple[list[float], int]:
    import httpx

    samples: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.get("/api/search", params=rng.choice(params))
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                samples.append((time.perf_counter() - started) * 1000)
                errors += 0 if ok else 1

    await asyncio.gather(*(client(i) for i in range(API_CLIENTS)))
    return samples, errors


def _httpx_run(base: str, params: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """API_CLIENTS asyncio + httpx clients in this process (on the server's cores)."""
    asyncio.run(_clients(base, params, 3.0))  # warm-up
    before, started = time.process_time(), time.monotonic()
    samples, errors = asyncio.run(_clients(base, params, seconds))
    cores = (time.process_time() - before) / (time.monotonic() - started)
    return client_figures(samples, errors, seconds, cores)


def _api_run(base: str, pid: int, params: list[dict[str, Any]], httpx: bool) -> dict[str, Any]:
    """API_CLIENTS clients for API_SECONDS (wrk, or httpx when asked or wrk is missing), with CPU figures."""
    before, started = server_cpu(pid), time.monotonic()
    if httpx or not wrk_path():
        figures = _httpx_run(base, params, API_SECONDS)
    else:
        paths = search_paths(params)
        run_wrk(base, paths, API_CLIENTS, 3.0)  # warm-up
        before, started = server_cpu(pid), time.monotonic()
        figures = run_wrk(base, paths, API_CLIENTS, API_SECONDS)
    cores = (server_cpu(pid) - before) / (time.monotonic() - started)
    figures["server_cpu_cores"] = round(cores, 2)
    figures["server_cpu_ms_per_request"] = round(1000 * cores / max(figures["requests_per_s"], 1e-9), 2)
    figures["load"] = _load()
    return figures


def bench_api(settings_env: dict[str, str]) -> dict[str, Any]:
    """20 clients × API_SECONDS on ``serve api``: boosted and ``boost=false`` from wrk, then boosted from
    httpx clients in this process (the comparison: what in-process clients take from the server)."""
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **settings_env}
    cmd = [sys.executable, "-m", "freshrank.cli", "serve", "api", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/api/search", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        boosted = [{"q": t, "genre": g or "", "offset": o} for t in TEXTS for g in GENRES for o in OFFSETS]
        plain = [{**p, "boost": "false"} for p in boosted]
        runs = [("api", boosted, False), ("api_noboost", plain, False)]
        if wrk_path():
            runs.append(("api_httpx", boosted, True))
        else:
            err.print(f"[yellow]{wrk_missing()}[/]")
        figures: dict[str, Any] = {
            "api_load_generator": "wrk" if wrk_path() else "httpx in the bench process"
        }
        for prefix, params, in_process in runs:
            run = _api_run(base, server.pid, params, in_process)
            figures.update({f"{prefix}_{k}": v for k, v in run.items()})
            err.print(
                f"{prefix}: {run['requests_per_s']:.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
                f"p99 {run['p99_ms']:.1f} ms, {run['errors']} errors; CPU server {run['server_cpu_cores']} "
                f"({run['server_cpu_ms_per_request']} ms/request) + clients {run['client_cpu_cores']} cores; "
                f"load {run['load']}"
            )
        for stat in ("p50_ms", "p99_ms", "requests_per_s"):
            ratio = figures[f"api_{stat}"] / max(figures[f"api_noboost_{stat}"], 1e-9)
            figures[f"api_{stat.removesuffix('_ms')}_vs_noboost"] = round(ratio, 2)
        figures["api_clients"] = API_CLIENTS
        figures["api_seconds"] = API_SECONDS
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)


# A new trend, end to end ------------------------------------------------------------------------------


def bench_fresh_trend(settings: Settings, cache_dir: Path, search_urls: dict[str, str]) -> dict[str, Any]:
    """Trend store → refresh of one new label → boosted search, with the catalogue already encoded."""
    from freshrank.classify.embedding import EmbeddingClassifier
    from freshrank.loop.service import ScoringLoop
    from freshrank.search import open_backend
    from freshrank.trends import Trend, open_trend_store

    classifier = EmbeddingClassifier(cache_dir=cache_dir)  # the machine's cache: encoded once per catalogue
    figures: dict[str, Any] = {}
    for kind, url in search_urls.items():
        backend = open_backend(url)
        loop = ScoringLoop(settings, backend, classifier=lambda: classifier, keep_state=False)
        encode_s = _timed(loop.refresh, hashtags=["#warmup"])  # fits: encodes the catalogue
        label = f"lighthouse keeper {uuid.uuid4().hex[:6]}"
        hashtag = "#" + label.replace(" ", "")
        store = open_trend_store(settings.resolved_trend_store_url)
        started = time.perf_counter()
        store.replace([Trend(hashtag=hashtag, label=label, score=50.0, count=500, baseline=1.0)])
        report = loop.refresh()
        page = loop.reader.search(limit=1)
        seconds = time.perf_counter() - started
        store.close()
        boosted = bool(page.hits) and page.hits[0].trend_scores.get(label, 0.0) > 0
        figures.update(
            {
                f"fresh_trend_{kind}_s": round(seconds, 3),
                f"fresh_trend_{kind}_boosted": boosted,
                f"fresh_trend_{kind}_scored": report.scored,
                f"fresh_trend_{kind}_fit_s": round(encode_s, 1),
                f"fresh_trend_{kind}_load": _load(),
            }
        )
        err.print(f"fresh trend on {kind}: {seconds:.2f}s to boosted results ({boosted}), load {_load()}")
        if hasattr(backend, "drop"):
            backend.drop()
    return figures


def run() -> dict[str, Any]:
    settings = Settings()
    movies = load_catalog(settings.movies_path).movies
    scores = TrendScores(movies)
    figures: dict[str, Any] = {"movies": len(movies), "labels": len(TREND_LABELS)}
    with tempfile.TemporaryDirectory(prefix="freshrank-bench-search-") as tmp:
        from freshrank.classify.embedding import EmbeddingClassifier
        from freshrank.loop.scores import Calibration, scores_version
        from freshrank.trends import Trend, open_trend_store

        # The version the API's classifier asks for, so the API ranks with these scores and scores nothing.
        calibration = Calibration.named(settings.search.calibration, settings.search.calibration_z)
        version = scores_version(EmbeddingClassifier(cache_dir=settings.cache_dir), calibration)
        db = Path(tmp) / "search.db"
        figures.update(bench_sqlite(movies, scores, version, db))
        state = Path(tmp) / "state"
        trend_url = f"sqlite:///{state / 'trends.db'}"
        store = open_trend_store(trend_url)
        trends = [
            Trend(hashtag="#" + label.replace(" ", ""), label=label, score=20.0 - i, count=100, baseline=1)
            for i, label in enumerate(TREND_LABELS)
        ]
        store.replace(trends)
        store.close()
        env = {
            "FRESHRANK_STATE_DIR": str(state),
            "FRESHRANK_SEARCH_URL": f"sqlite:///{db}",
            "FRESHRANK_TREND_STORE_URL": trend_url,
        }
        figures.update(bench_api(env))
        figures.update(bench_opensearch(movies, scores, version))
        fresh_settings = settings.model_copy(update={"state_dir": Path(tmp) / "fresh"})
        urls = {
            "sqlite": f"sqlite:///{Path(tmp) / 'fresh.db'}",
            "opensearch": f"opensearch://{OPENSEARCH}/freshrank-bench-fresh-{uuid.uuid4().hex[:10]}",
        }
        for url in urls.values():
            from freshrank.search import open_backend

            open_backend(url).index(movies)
        figures.update(bench_fresh_trend(fresh_settings, settings.cache_dir, urls))
    return figures
