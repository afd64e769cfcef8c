"""HTTP load for the API benches from ``wrk``, a compiled load generator, instead of clients in the bench.

asyncio + httpx clients in the bench process cost ~1 ms of CPU per request on the cores the server runs on
(2 here); wrk (C, epoll, one thread per core) costs a few µs, so what is measured is the server. A Lua
script picks each request's path at random from the mixed query set and, for paced users, waits a random
think time before each request (wrk's ``delay()``: not counted in the latency). wrk comes from Debian's
``wrk`` package (``scripts/install-system-deps.sh``); without it the benches fall back to httpx clients
and say so (``wrk_missing``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TIMEOUT_S = 60  # wrk's default of 2 s would drop slow answers from the percentiles (counted as timeouts)
MARK = "FRESHRANK-WRK "

_SCRIPT = """
paths = {%(paths)s}
think = {%(think)s}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  math.randomseed(%(seed)d + seed)
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
if think[2] > 0 then
  delay = function()
    return math.random(think[1], think[2])
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\\"requests\\": %%d, \\"duration_us\\": %%d, \\"connect\\": %%d, \\"read\\": %%d, " ..
    "\\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_missing() -> str:
    return (
        "wrk is not installed (apt-get install wrk, or scripts/install-system-deps.sh): the clients run in "
        "the bench process with httpx instead, on the server's cores"
    )


def script(paths: Sequence[str], think_ms: tuple[int, int] = (0, 0), seed: int = 14) -> str:
    """The Lua script: random paths from ``paths``, a uniform think time in ``think_ms`` before each."""
    for path in paths:
        if not path.startswith("/") or any(c in path for c in '"\\\n'):
            raise ValueError(f"not a plain request path: {path!r}")
    quoted = ", ".join(f'"{p}"' for p in paths)
    return _SCRIPT % {"paths": quoted, "think": f"{think_ms[0]}, {think_ms[1]}", "seed": seed, "mark": MARK}


def run_wrk(
    base: str,
    paths: Sequence[str],
    connections: int,
    seconds: float,
    think_ms: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """``connections`` keep-alive clients for ``seconds``: requests, errors, req/s, p50/p99 and wrk's CPU."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError(wrk_missing())
    threads = max(1, min(connections, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="freshrank-wrk-") as tmp:
        lua = Path(tmp) / "load.lua"
        lua.write_text(script(paths, think_ms))
        cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={TIMEOUT_S}s"]
        before, started = _children_cpu(), time.monotonic()
        done = subprocess.run([*cmd, "-s", str(lua), base], capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
    line = next((x for x in done.stdout.splitlines() if x.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}")
    raw = json.loads(line.removeprefix(MARK))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": raw["requests"],
        "errors": errors,
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "client_cpu_cores": round((_children_cpu() - before) / wall, 3),
    }


def search_paths(params: Sequence[dict[str, Any]]) -> list[str]:
    """``/api/search`` request paths for query parameter sets (what wrk picks from)."""
    from urllib.parse import urlencode

    return [f"/api/search?{urlencode(p)}" for p in params]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def client_figures(ms: Sequence[float], errors: int, seconds: float, cpu_cores: float) -> dict[str, Any]:
    """The figures of clients timed in this process, in ``run_wrk``'s shape."""
    return {
        "requests": len(ms),
        "errors": errors,
        "requests_per_s": round(len(ms) / seconds, 1),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "client_cpu_cores": round(cpu_cores, 2),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a server process and its workers."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
