"""Concurrent API clients (issue 17, item 7): ``make bench`` section ``concurrency``.

``freshrank serve api`` on the full catalogue with 20 trending labels (the soak's stack: SQLite search, a
private Redis trend store), mixed boosted searches from 1 client, then from ``CLIENTS`` (50) clients at once,
each without pause for ``SECONDS``: requests/s, p50/p99, errors, and the ratios to the single client.

With clients that never pause, Little's law fixes the latency: p50 ≈ clients / throughput, so 50 clients on
a server that at best doubles its throughput on 2 cores wait ~25× the single client; the figure to read is
the throughput ratio (parallel searches) and that every request is answered.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from freshrank.bench.search import _load, _pct
from freshrank.bench.soak import clients, start_stack, stop_stack
from freshrank.config import Settings
from freshrank.console import err

CLIENTS = 50
SECONDS = float(os.environ.get("FRESHRANK_CONCURRENCY_SECONDS", "30"))
WARMUP_S = 15.0


def _measure(base: str, count: int) -> dict[str, Any]:
    asyncio.run(clients(base, count, WARMUP_S, []))  # every server thread opens its reader and boosts
    record: list[tuple[float, float, int]] = []
    asyncio.run(clients(base, count, SECONDS, record))
    ms = [r[1] for r in record]
    figures = {
        "requests": len(record),
        "errors": sum(1 for r in record if r[2] != 200),
        "requests_per_s": round(len(record) / SECONDS, 1),
        "p50_ms": round(_pct(ms, 0.5), 1),
        "p99_ms": round(_pct(ms, 0.99), 1),
        "load": _load(),
    }
    err.print(f"{count} clients: {figures}")
    return figures


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="freshrank-concurrency-") as tmp:
        stack = start_stack(Path(tmp), Settings())
        try:
            one = _measure(stack.base, 1)
            many = _measure(stack.base, CLIENTS)
        finally:
            stop_stack(stack)
    figures = {f"one_client_{k}": v for k, v in one.items()}
    figures.update({f"clients{CLIENTS}_{k}": v for k, v in many.items()})
    figures["throughput_ratio"] = round(many["requests_per_s"] / max(one["requests_per_s"], 1e-9), 2)
    figures["p99_ratio"] = round(many["p99_ms"] / max(one["p99_ms"], 1e-9), 1)
    figures["seconds_per_run"] = SECONDS
    err.print(f"concurrency: throughput ×{figures['throughput_ratio']}, p99 ×{figures['p99_ratio']}")
    return figures
