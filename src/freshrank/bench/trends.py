"""Trend engine throughput: replay 1,000,000 tweets end to end (JSONL text → top N), with peak memory.

The file is generated under a temp dir from the shared tweets (background sampled with replacement over
4 hours, an always-popular tag, a burst, 100,000 synthetic authors, ISO-8601 times). The embedded engine
runs in a fresh process so its peak RSS is its own. The naive baseline (re-count a ``collections.Counter``
over every post of the last two windows at each slide) runs on a prefix of the same file in the same
run, since on the full file it would take hours; the ratio of the two rates is printed.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from freshrank.config import Settings, TrendSettings
from freshrank.console import err
from freshrank.trends.simulate import Scenario, load_texts, write_jsonl

TWEETS = 1_000_000
NAIVE_LINES = 50_000
HOURS = 4.0


def make_file(settings: Settings, path: Path, tweets: int = TWEETS) -> int:
    seconds = HOURS * 3600
    scenario = Scenario(
        seconds=seconds, background_rate=tweets / seconds * 0.98, popular_rate=tweets / seconds * 0.015,
        burst_at_seconds=seconds - 20 * 60, burst_seconds=600, burst_rate=tweets / seconds * 0.01,
        users=100_000,
    )
    return write_jsonl(scenario.posts(load_texts(settings.tweets_path)), path)


def _embedded(path: str, trends: dict[str, Any], queue: Any) -> None:
    from freshrank.trends.engine import TrendEngine
    from freshrank.trends.sources.replay import replay_lines

    engine = TrendEngine(TrendSettings(**trends))
    start = time.perf_counter()
    with open(path, encoding="utf-8") as fh:
        report = replay_lines(engine, fh)
    engine.finish()
    top = engine.top()
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = top[0].hashtag if top else None
    queue.put({"posts": report.posts, "seconds": elapsed, "peak_mb": peak_mb, "top": first,
               "tags": engine.tracked_tags})


def run_embedded(path: Path, trends: TrendSettings) -> dict[str, Any]:
    """Replay ``path`` in a fresh process; its rate and its own peak RSS."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_embedded, args=(str(path), trends.model_dump(), queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def naive_rate(path: Path, trends: TrendSettings, lines: int = NAIVE_LINES) -> float:
    """Posts/s of a straightforward implementation: re-count the last two windows at every slide."""
    import json

    from freshrank.trends.engine import burst_score
    from freshrank.trends.extract import extract_hashtags
    from freshrank.trends.sources.replay import parse_time_ms

    window, slide = trends.window_seconds * 1000, trends.slide_seconds * 1000
    recent: deque[tuple[int, list[str]]] = deque()
    next_tick: int | None = None
    start = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            if number >= lines:
                break
            row = json.loads(line)
            ms = parse_time_ms(row["created_at"])
            recent.append((ms, [t.casefold() for t in extract_hashtags(row["text"])]))
            next_tick = next_tick or (ms // slide + 1) * slide
            while ms > next_tick:
                while recent and recent[0][0] <= next_tick - 2 * window:
                    recent.popleft()
                cur = Counter(t for at, tags in recent if at > next_tick - window for t in tags)
                prev = Counter(t for at, tags in recent if at <= next_tick - window for t in tags)
                sorted(cur, key=lambda t: -burst_score(cur[t], prev[t]))[: trends.top_n]
                next_tick += slide
    return min(lines, number) / (time.perf_counter() - start)


def run() -> dict[str, object]:
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="freshrank-bench-trends-") as tmp:
        path = Path(tmp) / "tweets.jsonl"
        started = time.perf_counter()
        lines = make_file(settings, path)
        err.print(f"generated {lines:,} tweets ({path.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - started:.0f} s")
        embedded = run_embedded(path, settings.trends)
        rate = embedded["posts"] / embedded["seconds"]
        naive = naive_rate(path, settings.trends)
    err.print(
        f"embedded: {embedded['posts']:,} tweets in {embedded['seconds']:.2f} s = {rate:,.0f} tweets/s, "
        f"peak RSS {embedded['peak_mb']:.0f} MB, top {embedded['top']}, {embedded['tags']:,} tags tracked"
    )
    err.print(f"naive Counter re-count per slide (first {NAIVE_LINES:,} lines): {naive:,.0f} tweets/s; "
              f"embedded is {rate / naive:,.1f}x faster (cpus: {os.cpu_count()})")
    return {
        "embedded_tweets_per_s": round(rate),
        "embedded_peak_rss_mb": round(embedded["peak_mb"], 1),
        "naive_tweets_per_s": round(naive),
        "embedded_vs_naive": round(rate / naive, 1),
    }
