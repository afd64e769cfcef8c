"""Concurrent API clients (issues 14 and 17, item 7): ``make bench`` section ``concurrency``.

``freshrank serve api`` on the full catalogue with 20 trending labels (the soak's stack: SQLite search, a
private Redis trend store), mixed boosted searches from 1, 20 and 50 clients, each without pause for
``SECONDS``: requests/s, p50/p99, errors and the ratios to the single client, first with one server process
(the baseline of the same run), then with ``serve.workers`` processes (one per usable core by default);
and 50 clients that each pause ``THINK_S`` (±50 %) after every answer, like people reading a page.

The clients are ``wrk`` (``bench/load.py``: a compiled load generator, a few µs of CPU per request; paced
users through its ``delay()``), or, where wrk is not installed, asyncio + httpx in this process (~1 ms of
CPU per request, on the server's cores). Their CPU and the server's (all its processes) are reported beside
each figure. With clients that never pause, Little's law fixes the latency: p50 ≈ clients / throughput, so
p99 within 3× of one client is out of reach for 50 of them on any server that does not serve ~17× one
client's rate; the paced run shows the latency of 50 concurrent users below the server's capacity.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from freshrank.bench.load import client_figures, run_wrk, search_paths, server_cpu, wrk_missing, wrk_path
from freshrank.bench.search import _load
from freshrank.bench.soak import clients, search_params, start_stack, stop_stack
from freshrank.config import Settings
from freshrank.console import err
from freshrank.serve.api import worker_count

CLIENT_COUNTS = (1, 20, 50)
THINK_S = 0.5
PACED = "50paced"
SECONDS = float(os.environ.get("FRESHRANK_CONCURRENCY_SECONDS", "30"))
WARMUP_S = 10.0


def _paths() -> list[str]:
    return search_paths(search_params())


def _clients_run(base: str, count: int, seconds: float, think_s: float) -> dict[str, Any]:
    """``count`` clients for ``seconds``: wrk when installed, else httpx clients in this process."""
    if wrk_path():
        think_ms = (round(think_s * 500), round(think_s * 1500))
        return run_wrk(base, _paths(), count, seconds, think_ms)
    record: list[tuple[float, float, int]] = []
    before, started = time.process_time(), time.monotonic()
    asyncio.run(clients(base, count, seconds, record, think_s))
    cores = (time.process_time() - before) / (time.monotonic() - started)
    errors = sum(1 for r in record if r[2] != 200)
    return client_figures([r[1] for r in record], errors, seconds, cores)


def _measure(base: str, server_pid: int, count: int, think_s: float = 0.0) -> dict[str, Any]:
    _clients_run(base, count, WARMUP_S, think_s)  # every server thread opens its reader
    server_before, started = server_cpu(server_pid), time.monotonic()
    figures = _clients_run(base, count, SECONDS, think_s)
    figures["server_cpu_cores"] = round(
        (server_cpu(server_pid) - server_before) / (time.monotonic() - started), 2
    )
    figures["load"] = _load()
    err.print(f"{count} clients (think {think_s} s): {figures}")
    return figures


def _configuration(workers: int) -> dict[str, Any]:
    """1, 20 and 50 clients against one stack running ``workers`` server processes."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="freshrank-concurrency-") as tmp:
        env = {"FRESHRANK_SERVE__WORKERS": str(workers)}
        stack = start_stack(Path(tmp), Settings(), extra_env=env)
        try:
            runs: dict[int | str, dict[str, Any]] = {
                count: _measure(stack.base, stack.api.pid, count) for count in CLIENT_COUNTS
            }
            runs[PACED] = _measure(stack.base, stack.api.pid, 50, THINK_S)
        finally:
            stop_stack(stack)
    one = runs[1]
    prefix = f"workers{workers}"
    for count, run in runs.items():
        figures.update({f"{prefix}_clients{count}_{k}": v for k, v in run.items()})
        ratio_rps = run["requests_per_s"] / max(one["requests_per_s"], 1e-9)
        ratio_p99 = run["p99_ms"] / max(one["p99_ms"], 1e-9)
        figures[f"{prefix}_clients{count}_throughput_ratio"] = round(ratio_rps, 2)
        figures[f"{prefix}_clients{count}_p99_ratio"] = round(ratio_p99, 1)
        err.print(
            f"{workers} worker(s), {count} clients: {run['requests_per_s']} req/s (×{ratio_rps:.2f} of one "
            f"client), p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms (×{ratio_p99:.1f} of one client), "
            f"{run['errors']} errors; CPU server {run['server_cpu_cores']} + clients "
            f"{run['client_cpu_cores']} cores; load {run['load']}"
        )
    return figures


def run() -> dict[str, Any]:
    workers = worker_count(Settings())
    figures: dict[str, Any] = {
        "workers": workers,
        "seconds_per_run": SECONDS,
        "cores": os.cpu_count(),
        "think_s": THINK_S,
        "load_generator": "wrk" if wrk_path() else "httpx in the bench process",
    }
    if not wrk_path():
        err.print(f"[yellow]{wrk_missing()}[/]")
    for count in dict.fromkeys((1, workers)):
        figures.update(_configuration(count))
    return figures
