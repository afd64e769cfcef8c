"""Trend engine throughput: replay 1,000,000 tweets end to end (JSONL text → top N), with peak memory.

The file is generated under a temp dir from the shared tweets (background sampled with replacement over
4 hours, an always-popular tag, a burst, 100,000 synthetic authors, ISO-8601 times; 1,000,000 posts reuse
about 78,000 distinct texts). The embedded replay (``replay_file``: a read-ahead thread reads each block
with the compiled reader, ``native/``, while the main thread runs the windows in file order) runs in a fresh
process so its peak RSS is its own. ``embedded_tweets_per_s`` is the wall-clock rate of that replay
(``FRESHRANK_BENCH_WORKERS=N`` parses in N processes instead), printed with the load average, since on a
shared box the wall clock also measures the other tenants; ``embedded_cpu_tweets_per_s`` is posts per CPU
second of the replay (all threads and processes). Two baselines run on the same file in the same run: the
same replay without the compiled scanner (``python_tweets_per_s``: what an install without Rust gets,
through pyarrow and the Python extractor), and a naive re-count (a ``collections.Counter`` over every post
of the last two windows at each slide) on a prefix, since on the full file it would take hours; the ratios
are printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    seconds, burst_seconds = HOURS * 3600, 600
    popular, burst = int(tweets * 0.015), int(tweets * 0.0005)
    scenario = Scenario(
        seconds=seconds,
        background_rate=(tweets - popular - burst) / seconds,
        popular_rate=popular / seconds,
        burst_at_seconds=seconds - 20 * 60,
        burst_seconds=burst_seconds,
        burst_rate=burst / burst_seconds,
        users=100_000,
    )
    return write_jsonl(scenario.posts(load_texts(settings.tweets_path)), path)


_CHILD = """
import json, os, resource, sys, time
from freshrank.config import TrendSettings
from freshrank.trends.engine import TrendEngine
from freshrank.labels import hashtag_to_label
from freshrank.trends import spellings
from freshrank.trends.sources.replay import default_workers, replay_file

hashtag_to_label("#warmup")  # loads wordsegment's dictionary once, outside the timed replay
if os.environ.get("FRESHRANK_BENCH_PYTHON"):
    spellings.NATIVE = False
calibration = time.process_time()
total = 0
for i in range(10_000_000):
    total += i
calibration = time.process_time() - calibration
engine = TrendEngine(TrendSettings.model_validate_json(sys.argv[2]))
workers = int(os.environ.get("FRESHRANK_BENCH_WORKERS", default_workers()))
start, cpu = time.perf_counter(), time.process_time()
with open(sys.argv[1], "rb") as fh:
    report = replay_file(engine, fh, workers=workers)
engine.finish()
top = engine.top()
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, reaped when the pool closed
print(json.dumps({"posts": report.posts, "seconds": elapsed, "cpu_seconds": cpu,
                  "worker_cpu_seconds": children.ru_utime + children.ru_stime, "workers": workers,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_peak_mb": children.ru_maxrss / 1024,
                  "calibration": calibration, "native": spellings.NATIVE,
                  "top": top[0].hashtag if top else None, "tags": engine.tracked_tags}))
"""


def run_embedded(path: Path, trends: TrendSettings, python_only: bool = False) -> dict[str, Any]:
    """Replay ``path`` in a fresh interpreter; its rate and its own peak RSS (``python_only``: without the
    compiled scanner)."""
    env = {**os.environ, "FRESHRANK_BENCH_PYTHON": "1"} if python_only else None
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), trends.model_dump_json()],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def naive_rate(path: Path, trends: TrendSettings, lines: int = NAIVE_LINES) -> float:
    """Posts/s of a straightforward implementation: re-count the last two windows at every slide."""
    from freshrank.trends.engine import velocity_score
    from freshrank.trends.extract import extract_hashtags
    from freshrank.trends.sources.replay import parse_time_ms

    window, slide = trends.window_seconds * 1000, trends.slide_seconds * 1000
    recent: deque[tuple[int, list[str]]] = deque()
    next_tick: int | None = None
    start = time.process_time()
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
                sorted(cur, key=lambda t: -velocity_score(cur[t], prev[t]))[: trends.top_n]
                next_tick += slide
    return min(lines, number) / (time.process_time() - start)


def run() -> dict[str, object]:
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="freshrank-bench-trends-") as tmp:
        path = Path(tmp) / "tweets.jsonl"
        started = time.perf_counter()
        lines = make_file(settings, path)
        err.print(
            f"generated {lines:,} tweets ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        embedded = run_embedded(path, settings.trends)
        load = os.getloadavg()[0]
        python = run_embedded(path, settings.trends, python_only=True)
        naive = naive_rate(path, settings.trends)
    posts, cpu = embedded["posts"], embedded["cpu_seconds"] + embedded["worker_cpu_seconds"]
    wall_rate, cpu_rate = posts / embedded["seconds"], posts / cpu
    main_rate = posts / embedded["cpu_seconds"]
    err.print(
        f"embedded: {posts:,} tweets in {embedded['seconds']:.2f} s wall = {wall_rate:,.0f}/s "
        f"(compiled scanner: {'yes' if embedded['native'] else 'NO: build native/'}) with "
        f"{embedded['workers']} parser process(es) at load average {load:.1f} on {os.cpu_count()} CPUs "
        f"(shared box); {cpu:.2f} CPU s in all = {cpu_rate:,.0f}/CPU s, main process "
        f"{embedded['cpu_seconds']:.2f} CPU s = {main_rate:,.0f}/CPU s; peak RSS "
        f"{embedded['peak_mb']:.0f} MB (workers {embedded['worker_peak_mb']:.0f} MB each at most), top "
        f"{embedded['top']}, {embedded['tags']:,} tags tracked; CPU calibration: 10^7 Python additions "
        f"took {embedded['calibration']:.2f} CPU s (about 0.4 s on an idle modern core)"
    )
    python_rate = python["posts"] / python["seconds"]
    err.print(
        f"same replay without the compiled scanner (Python extractor + pyarrow): {python['seconds']:.2f} s = "
        f"{python_rate:,.0f}/s; compiled is {wall_rate / python_rate:.2f}x faster, same top "
        f"{'yes' if python['top'] == embedded['top'] and python['tags'] == embedded['tags'] else 'NO'}"
    )
    err.print(
        f"naive Counter re-count per slide (first {NAIVE_LINES:,} lines): {naive:,.0f} tweets/CPU s; "
        f"embedded is {cpu_rate / naive:,.1f}x faster per CPU second"
    )
    return {
        "embedded_tweets_per_s": round(wall_rate),
        "embedded_cpu_tweets_per_s": round(cpu_rate),
        "embedded_main_cpu_tweets_per_s": round(main_rate),
        "embedded_workers": embedded["workers"],
        "load_average": round(load, 1),
        "calibration_cpu_s": round(embedded["calibration"], 2),
        "embedded_peak_rss_mb": round(embedded["peak_mb"], 1),
        "embedded_worker_peak_rss_mb": round(embedded["worker_peak_mb"], 1),
        "embedded_native": embedded["native"],
        "python_tweets_per_s": round(python_rate),
        "embedded_vs_python": round(wall_rate / python_rate, 2),
        "naive_tweets_per_s": round(naive),
        "embedded_vs_naive": round(cpu_rate / naive, 1),
    }
