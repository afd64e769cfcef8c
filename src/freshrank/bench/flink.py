"""Flink trend job throughput on the same 1,000,000-tweet file as ``bench/trends.py``, beside the embedded
engine on the very same file in the same run (ratio printed), with the exact agreement checked.

The job runs in a local mini-cluster at parallelism ``FRESHRANK_BENCH_FLINK_PARALLELISM`` (default 2);
its start-up (mini-cluster, planner, Python workers) is measured separately on a one-post file and
reported, and the rate after start-up is the file's posts over (job time − start-up). The JVM's peak RSS
and CPU time (with its Python UDF workers) come from the job (``/proc``); on a shared box the CPU rate
(posts per CPU second beyond the start-up's) is the figure the other tenants distort least. The agreement
is the full top N (hashtags, labels, counts, baselines, authors, scores within 1e-9) against a replay of
the same file by the embedded engine.
``FRESHRANK_BENCH_FLINK_TWEETS`` makes a smaller file (same 4 hours and scenario) for a quick look.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from freshrank.bench.trends import TWEETS, make_file, run_embedded
from freshrank.config import Settings, TrendSettings
from freshrank.console import err
from freshrank.trends.base import Trend
from freshrank.trends.engine import TrendEngine
from freshrank.trends.flink.launcher import run_trend_job
from freshrank.trends.flink.spec import FlinkJobResult
from freshrank.trends.sources.replay import replay_file
from freshrank.trends.stores.codec import decode, encode

DEFAULT_PARALLELISM = 2
# The windows' pending events (up to 2W ahead) and probe ticks (up to W ahead) live on the JVM heap.
DEFAULT_JVM_ARGS = "-Xmx4g"


def _timed_job(path: Path, settings: Settings, parallelism: int) -> tuple[float, FlinkJobResult]:
    start = time.perf_counter()
    result = run_trend_job(path, None, settings, parallelism=parallelism)
    return time.perf_counter() - start, result


def embedded_trends(path: Path, trends: TrendSettings) -> list[Trend]:
    """The embedded engine's final top N on the file (the reference for exact results)."""
    engine = TrendEngine(trends)
    with path.open("rb") as fh:
        replay_file(engine, fh, workers=1)
    engine.finish()
    return engine.top()


def differences(flink: list[Trend], embedded: list[Trend]) -> list[str]:
    """Where the two top N differ (empty: the same trends, in the same order, with the same figures).

    The job's trends come through the trend stores' JSON (scores with 6 decimals), so the reference goes
    through it too; the sparkline ``history`` is the embedded engine's alone.
    """
    found = []
    if len(flink) != len(embedded):
        found.append(f"{len(flink)} trends against {len(embedded)}")
    for rank, (f, e) in enumerate(zip(flink, embedded, strict=False), start=1):
        reference = replace(decode(encode(e)), history=f.history)
        if f != reference:
            found.append(f"#{rank}: flink {f.to_dict()} embedded {reference.to_dict()}")
    return found


def run() -> dict[str, Any]:
    settings = Settings()
    tweets = int(os.environ.get("FRESHRANK_BENCH_FLINK_TWEETS", TWEETS))
    parallelism = int(os.environ.get("FRESHRANK_BENCH_FLINK_PARALLELISM", DEFAULT_PARALLELISM))
    os.environ.setdefault("FRESHRANK_FLINK_JVM_ARGS", DEFAULT_JVM_ARGS)
    with tempfile.TemporaryDirectory(prefix="freshrank-bench-flink-") as tmp:
        path = Path(tmp) / "tweets.jsonl"
        lines = make_file(settings, path, tweets)
        one = Path(tmp) / "one.jsonl"
        one.write_text(json.dumps({"text": "#start", "created_at": 1_800_000_000_000}) + "\n")
        err.print(
            f"flink bench: {lines:,} generated tweets, window {settings.trends.window_seconds} s / slide "
            f"{settings.trends.slide_seconds} s, parallelism {parallelism}"
        )
        load_before = os.getloadavg()[0]
        startup_s, startup = _timed_job(one, settings, parallelism)
        flink_s, result = _timed_job(path, settings, parallelism)
        load_after = os.getloadavg()[0]
        embedded = run_embedded(path, settings.trends)
        reference = embedded_trends(path, settings.trends)
    top = result.to_trends()
    diff = differences(top, reference)
    after_startup = result.posts / max(flink_s - startup_s, 1e-9)
    flink_rate = result.posts / flink_s
    embedded_rate = embedded["posts"] / embedded["seconds"]
    embedded_cpu_rate = embedded["posts"] / (embedded["cpu_seconds"] + embedded["worker_cpu_seconds"])
    # CPU seconds (JVM + Python workers) beyond the start-up's: what the load average does not distort
    cpu_s = (result.jvm_cpu_s or 0.0) - (startup.jvm_cpu_s or 0.0)
    cpu_rate = result.posts / cpu_s if cpu_s > 0 else None
    err.print(
        f"flink: {result.posts:,} tweets in {flink_s:.1f} s = {flink_rate:,.0f} tweets/s "
        f"({after_startup:,.0f}/s after the {startup_s:.1f} s start-up), JVM peak RSS "
        f"{result.jvm_peak_mb or 0:,.0f} MB, load average {load_before:.1f} → {load_after:.1f} on "
        f"{os.cpu_count()} CPUs; embedded: {embedded_rate:,.0f} tweets/s on the same file; "
        f"embedded/flink = {embedded_rate / flink_rate:,.1f}x; per CPU second (beyond start-up): flink "
        f"{cpu_rate or 0:,.0f}/CPU s ({cpu_s:.0f} CPU s), embedded {embedded_cpu_rate:,.0f}/CPU s; "
        f"same top {len(reference)}: "
        f"{'yes' if not diff else 'NO'}"
    )
    for line in diff[:5]:
        err.print(f"[red]differs:[/] {line}")
    return {
        "flink_tweets": result.posts,
        "flink_parallelism": parallelism,
        "flink_seconds": round(flink_s, 2),
        "flink_tweets_per_s": round(flink_rate, 1),
        "flink_startup_seconds": round(startup_s, 2),
        "flink_tweets_per_s_after_startup": round(after_startup, 1),
        "flink_jvm_peak_rss_mb": result.jvm_peak_mb,
        "flink_cpu_seconds_after_startup": round(cpu_s, 1),
        "flink_cpu_tweets_per_s": round(cpu_rate, 1) if cpu_rate else None,
        "flink_embedded_cpu_tweets_per_s_same_file": round(embedded_cpu_rate, 1),
        "flink_load_average": [round(load_before, 1), round(load_after, 1)],
        "flink_embedded_tweets_per_s_same_file": round(embedded_rate, 1),
        "embedded_over_flink": round(embedded_rate / flink_rate, 2),
        "flink_top": top[0].hashtag if top else None,
        "flink_same_top_n_as_embedded": not diff,
    }
