"""Flink trend job throughput on the same kind of generated file as ``bench/trends.py``, beside the embedded
engine on the very same file in the same run (ratio printed).

The Flink SQL job ranks every window (one per slide), so its cost grows with windows × distinct tags per
window × slides per window; the full 1,000,000-tweet file would take far longer than the 3 minutes this
section may use on a 2-core machine, so it generates ``FRESHRANK_BENCH_FLINK_TWEETS`` (default 2,000)
tweets over the same 4 hours with the same scenario and says so in its output. The Flink time includes the
mini-cluster's start-up (10-20 s), measured separately on a one-post file and reported too.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from freshrank.bench.trends import make_file, run_embedded
from freshrank.config import Settings
from freshrank.console import err
from freshrank.trends.flink.launcher import run_trend_job

DEFAULT_TWEETS = 2_000


def _timed_job(path: Path, settings: Settings) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run_trend_job(path, None, settings)
    return time.perf_counter() - start, result


def run() -> dict[str, Any]:
    settings = Settings()
    tweets = int(os.environ.get("FRESHRANK_BENCH_FLINK_TWEETS", DEFAULT_TWEETS))
    with tempfile.TemporaryDirectory(prefix="freshrank-bench-flink-") as tmp:
        path = Path(tmp) / "tweets.jsonl"
        lines = make_file(settings, path, tweets)
        one = Path(tmp) / "one.jsonl"
        one.write_text(json.dumps({"text": "#start", "created_at": 1_800_000_000_000}) + "\n")
        err.print(
            f"flink bench: {lines:,} generated tweets (not 1,000,000: see bench/flink.py), "
            f"window {settings.trends.window_seconds} s / slide {settings.trends.slide_seconds} s"
        )
        startup_s, _ = _timed_job(one, settings)
        flink_s, result = _timed_job(path, settings)
        embedded = run_embedded(path, settings.trends)
    flink_rate = result.posts / flink_s
    embedded_rate = embedded["posts"] / embedded["seconds"]
    top = result.to_trends()
    ratio = embedded_rate / flink_rate
    err.print(
        f"flink: {flink_rate:,.0f} tweets/s ({flink_s:.1f} s, start-up {startup_s:.1f} s); embedded: "
        f"{embedded_rate:,.0f} tweets/s on the same file; embedded/flink = {ratio:,.1f}x"
    )
    return {
        "flink_tweets_per_s": round(flink_rate, 1),
        "flink_tweets": result.posts,
        "flink_seconds": round(flink_s, 2),
        "flink_startup_seconds": round(startup_s, 2),
        "flink_tweets_per_s_after_startup": round(result.posts / max(flink_s - startup_s, 1e-9), 1),
        "flink_file_note": f"{lines} generated tweets (1,000,000 would take far too long on Flink)",
        "flink_embedded_tweets_per_s_same_file": round(embedded_rate, 1),
        "embedded_over_flink": round(ratio, 2),
        "flink_top": top[0].hashtag if top else None,
        "flink_same_top_as_embedded": (top[0].hashtag if top else None) == embedded["top"],
    }
