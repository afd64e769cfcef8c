"""The whole system under load for minutes (issue 17, item 8): ``make bench`` section ``soak``.

``freshrank serve api`` on the full catalogue (search on a private index of the shared OpenSearch, reached
through a relay of the soak's own; ``FRESHRANK_SOAK_SEARCH=sqlite`` for SQLite; a private Redis trend store;
SQLite judgments) while, at the same time:

* ``SOAK_CLIENTS`` (20) clients search without pause (mixed queries, the current trends boosting);
* a feeder publishes a new trend snapshot every ``FEED_S`` seconds (three new labels each time, words from
  movie titles), as a replay would;
* ``POST /api/refresh`` every ``REFRESH_S`` seconds scores the new labels (the embedding classifier, in the
  server) and runs retention, with ``retention.label_days`` shortened to ``LABEL_TTL_S`` seconds so that it
  acts within the run;
* judgments are written through the API (``POST /api/judgments``) every ``JUDGE_S`` seconds;
* Redis is killed (SIGKILL) at 30 % of the run and restarted ``OUTAGE_S`` seconds later; then OpenSearch
  dies for the API at 65 %: the relay in front of it is killed (every connection reset, new ones refused) and
  started again ``OUTAGE_S`` seconds later (the shared OpenSearch itself serves other jobs on this machine).

Reported: requests, 5xx and transport errors inside and outside the outages, p99 per ``BUCKET_S`` seconds,
the server's RSS and the search index's size over time, and whether every acknowledged judgment is in the
store at the end; a PNG plot (``FRESHRANK_SOAK_PLOT``, default ``soak.png``). ``FRESHRANK_SOAK_SECONDS``
sets the length (default 600).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freshrank.bench.load import percentile
from freshrank.bench.search import GENRES, OFFSETS, TEXTS, _load
from freshrank.bench.searchdata import TREND_LABELS, TrendScores
from freshrank.bench.servers import Relay, free_port, start_redis
from freshrank.catalog.loader import load_catalog
from freshrank.config import Settings
from freshrank.console import err

SOAK_CLIENTS = 20
FEED_S = 15.0
REFRESH_S = 20.0
JUDGE_S = 0.5
OUTAGE_S = 20.0
BUCKET_S = 30.0
LABEL_TTL_S = 90.0
SAMPLE_S = 5.0
WARMUP_S = 120.0  # growth is measured after this: caches filled, first labels scored, retention running
TOKEN = "soak-token"


OPENSEARCH = os.environ.get("FRESHRANK_TEST_OPENSEARCH", "127.0.0.1:9200")


@dataclass
class Stack:
    """The servers of one run and where their state lives."""

    root: Path
    api: subprocess.Popen[bytes]
    redis: subprocess.Popen[bytes]
    redis_port: int
    base: str
    search_url: str  # the index, reached directly (not through the relay)
    env: dict[str, str] = field(default_factory=dict)
    relay: Relay | None = None  # in front of OpenSearch, when search runs there

    def search_mb(self) -> float:
        """The search index's size: the SQLite file and its WAL, or the OpenSearch index's store."""
        if self.search_url.startswith("sqlite:"):
            db = self.search_url.removeprefix("sqlite:///")
            return sum(_size(Path(f"{db}{suffix}")) for suffix in ("", "-wal")) / 2**20
        from opensearchpy import OpenSearch

        index = self.search_url.rsplit("/", 1)[1]
        client = OpenSearch(hosts=[f"http://{OPENSEARCH}"], timeout=10)
        try:
            stats = client.indices.stats(index=index, metric="store")
            return float(stats["indices"][index]["total"]["store"]["size_in_bytes"]) / 2**20
        except Exception:  # a sample is skipped, not the run
            return 0.0
        finally:
            client.close()


def prepare(root: Path, settings: Settings, search: str = "sqlite") -> tuple[str, str]:
    """A search index (SQLite file or private OpenSearch index) with the catalogue and 20 labels of calibrated
    scores under the API's version: (its URL, the version)."""
    from freshrank.classify.embedding import EmbeddingClassifier
    from freshrank.loop.scores import Calibration, scores_version
    from freshrank.search import open_backend
    from freshrank.search.base import SearchBackend

    movies = load_catalog(settings.movies_path).movies
    calibration = Calibration.named(settings.search.calibration, settings.search.calibration_z)
    classifier = EmbeddingClassifier(cache_dir=settings.cache_dir)
    # The catalogue's embeddings are computed here once per checkout (cached in its state directory, in id
    # order as the server reads them from the index): the soak measures the steady state, not a worker
    # encoding 12,000 movies (minutes of CPU and a few hundred MB) on its first refresh.
    classifier.fit(sorted(movies, key=lambda movie: movie.id))
    version = scores_version(classifier, calibration)
    if search == "opensearch":
        url = f"opensearch://{OPENSEARCH}/freshrank-soak-{uuid.uuid4().hex[:10]}"
    else:
        url = f"sqlite:///{root / 'search.db'}"
    backend: SearchBackend = open_backend(url)
    backend.index(movies)
    scores = TrendScores(movies)
    for label in TREND_LABELS:
        backend.put_scores(version, label, scores.scores(label))
    backend.close()  # type: ignore[attr-defined]
    return url, version


def start_stack(
    root: Path, settings: Settings, extra_env: dict[str, str] | None = None, search: str = "sqlite"
) -> Stack:
    """Redis, the prepared index and the API server (its state dir shares the machine's encoder cache)."""
    import httpx

    search_url, _ = prepare(root, settings, search)
    relay = None
    api_search_url = search_url
    if search == "opensearch":
        relay = Relay(OPENSEARCH)
        relay.start()
        api_search_url = f"opensearch://{relay.address}/{search_url.rsplit('/', 1)[1]}"
    state = root / "state"
    state.mkdir()
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    (state / "cache").symlink_to(settings.cache_dir.resolve())  # the catalogue is encoded once per machine
    redis_port = free_port()
    redis_proc = start_redis(root, redis_port)
    port = free_port()
    env = {
        **os.environ,
        "FRESHRANK_STATE_DIR": str(state),
        "FRESHRANK_SEARCH_URL": api_search_url,
        "FRESHRANK_TREND_STORE_URL": f"redis://127.0.0.1:{redis_port}/0?prefix=soak",
        "FRESHRANK_CLASSIFIER__NAME": "embedding",
        "FRESHRANK_SERVE__API_TOKEN": TOKEN,
        **(extra_env or {}),
    }
    publish(env["FRESHRANK_TREND_STORE_URL"], list(TREND_LABELS))
    cmd = [sys.executable, "-m", "freshrank.cli", "serve", "api", "--port", str(port)]
    log = (root / "api.log").open("wb")
    api = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    stack = Stack(root, api, redis_proc, redis_port, base, search_url, env, relay)
    for _ in range(1500):
        if api.poll() is not None:
            stop_stack(stack)
            raise RuntimeError(f"freshrank serve api exited: {(root / 'api.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/api/search", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return stack


def stop_stack(stack: Stack) -> None:
    for process in (stack.api, stack.redis):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    if stack.relay is not None:
        from freshrank.search import open_backend

        stack.relay.stop()
        open_backend(stack.search_url).drop()  # type: ignore[attr-defined]


def publish(url: str, labels: list[str]) -> None:
    from freshrank.trends import Trend, open_trend_store

    store = open_trend_store(url)
    try:
        store.replace(
            [
                Trend("#" + label.replace(" ", ""), label, 30.0 - i, 100, 1.0)
                for i, label in enumerate(labels[:20])
            ]
        )
    finally:
        store.close()


def search_params() -> list[dict[str, Any]]:
    return [{"q": t, "genre": g or "", "offset": o} for t in TEXTS for g in GENRES for o in OFFSETS]


async def clients(
    base: str, count: int, seconds: float, record: list[tuple[float, float, int]], think_s: float = 0.0
) -> None:
    """``count`` clients searching for ``seconds``, each pausing ``think_s`` after every answer (0: never):
    (start time, ms, status; 0 = no answer)."""
    import httpx

    params = search_params()
    # Each client's HTTP client is made before the clock starts: making one (its TLS context) costs tens of
    # ms of this process's CPU, which 50 clients starting at once would add to the first requests' times.
    https = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(count)]
    deadline = time.time() + seconds

    async def client(seed: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(seed)
        async with http:
            await asyncio.sleep(rng.uniform(0, think_s))  # paced users arrive spread out, not all at once
            while time.time() < deadline:
                started = time.time()
                try:
                    status = (await http.get("/api/search", params=rng.choice(params))).status_code
                except httpx.HTTPError:
                    status = 0
                record.append((started, (time.time() - started) * 1000, status))
                if think_s:
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)  # users who read the page

    await asyncio.gather(*(client(i, http) for i, http in enumerate(https)))


class Background:
    """The feeder, the refresher, the judge, the sampler and the Redis outage, each a thread."""

    def __init__(self, stack: Stack, seconds: float, words: list[str]) -> None:
        self.stack, self.seconds, self.words = stack, seconds, words
        self.stop = threading.Event()
        self.started = time.time()
        self.samples: list[dict[str, Any]] = []
        self.judged: dict[tuple[str, int], int] = {}
        self.counts = {
            "feeds": 0,
            "feeds_failed": 0,
            "refreshes": 0,
            "refreshes_failed": 0,
            "judge_failed": 0,
        }
        self.refresh_reports: list[dict[str, Any]] = []
        self.outages: list[tuple[str, float, float]] = []  # (server, down at, up at)
        self.threads = [
            threading.Thread(target=fn, daemon=True)
            for fn in (self._feed, self._refresh, self._judge, self._sample, self._outage)
        ]

    def __enter__(self) -> Background:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _feed(self) -> None:
        rng = random.Random(17)
        labels = list(TREND_LABELS)
        while not self.stop.wait(FEED_S):
            labels = [" ".join(rng.sample(self.words, 2)) for _ in range(3)] + labels[:17]
            try:
                publish(self.stack.env["FRESHRANK_TREND_STORE_URL"], labels)
                self.counts["feeds"] += 1
            except Exception:  # Redis is down (the outage): the next feed tries again
                self.counts["feeds_failed"] += 1

    def _refresh(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {TOKEN}"}
        while not self.stop.wait(REFRESH_S):
            try:
                response = httpx.post(f"{self.stack.base}/api/refresh", headers=headers, timeout=300)
                ok = response.status_code == 200
                if ok:
                    self.refresh_reports.append(response.json()["report"])
            except httpx.HTTPError:
                ok = False
            self.counts["refreshes" if ok else "refreshes_failed"] += 1

    def _judge(self) -> None:
        import httpx

        rng = random.Random(23)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.stack.base, headers=headers, timeout=60) as http:
            while not self.stop.wait(JUDGE_S):
                key = (f"#{rng.choice(TREND_LABELS).replace(' ', '')}", rng.randint(1, 400_000))
                grade = rng.randint(0, 3)
                body = {"query": key[0], "genre": "", "doc_id": key[1], "grade": grade}
                try:
                    if http.post("/api/judgments", json=body).status_code == 200:
                        self.judged[key] = grade
                        continue
                except httpx.HTTPError:
                    pass
                self.counts["judge_failed"] += 1

    def _sample(self) -> None:
        while True:
            self.samples.append(
                {
                    "t": time.time() - self.started,
                    **_rss_mb(self.stack.api.pid),
                    "db_mb": self.stack.search_mb(),
                    "load": os.getloadavg()[0],
                }
            )
            if self.stop.wait(SAMPLE_S):
                return

    def _outage(self) -> None:
        """Redis killed at 30 % of the run (40 % when search is on SQLite), OpenSearch's relay at 65 %."""
        relay = self.stack.relay
        if self.stop.wait(self.seconds * (0.3 if relay else 0.4)):
            return
        killed = time.time()
        self.stack.redis.send_signal(signal.SIGKILL)
        self.stack.redis.wait()
        self.stop.wait(OUTAGE_S)
        self.stack.redis = start_redis(self.stack.root, self.stack.redis_port)
        self.outages.append(("redis", killed, time.time()))
        if relay is None or self.stop.wait(max(0.0, self.started + self.seconds * 0.65 - time.time())):
            return
        killed = time.time()
        relay.stop()
        self.stop.wait(OUTAGE_S)
        relay.start()
        self.outages.append(("opensearch", killed, time.time()))


def _rss_mb(pid: int) -> dict[str, Any]:
    """Resident memory of the server, in MiB: ``rss_mb`` over its process and every child,
    ``rss_mb_by_process`` per process ("supervisor", "worker <pid>", multiprocessing's "resource tracker")."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {"rss_mb": 0.0, "rss_mb_by_process": {}}
    by_process: dict[str, float] = {}
    for process in processes:
        try:
            by_process[_role(process, pid)] = process.memory_info().rss / 2**20
        except psutil.Error:  # a worker that just exited
            continue
    return {"rss_mb": sum(by_process.values()), "rss_mb_by_process": by_process}


def _role(process: Any, supervisor: int) -> str:
    if process.pid == supervisor:
        return "supervisor"
    if "resource_tracker" in " ".join(process.cmdline()):
        return "resource tracker"
    return f"worker {process.pid}"


def _per_process(samples: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each server process's RSS over the run: [first, last, max] MiB."""
    series: dict[str, list[float]] = {}
    for sample in samples:
        for name, mb in sample["rss_mb_by_process"].items():
            series.setdefault(name, []).append(mb)
    return {name: [round(mb[0], 1), round(mb[-1], 1), round(max(mb), 1)] for name, mb in series.items()}


def _slope(samples: list[dict[str, Any]], key: str, after_s: float) -> float | None:
    """Growth of ``key`` in MiB per minute after ``after_s`` (least squares); None with too few samples."""
    import numpy as np

    points = [(s["t"], s[key]) for s in samples if s["t"] >= after_s]
    if len(points) < 3:
        return None
    t, y = np.array(points).T
    return round(float(np.polyfit(t, y, 1)[0]) * 60, 2)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def judgments_lost(stack: Stack, judged: dict[tuple[str, int], int]) -> int:
    """Acknowledged judgments missing (or with another grade) in the store at the end."""
    from freshrank.evaluate.store import open_judgment_store

    store = open_judgment_store(f"sqlite:///{stack.root / 'state' / 'judgments.db'}")
    stored = {(j.trend, j.doc_id): j.grade for j in store.judgments()}
    store.close()
    return sum(1 for key, grade in judged.items() if stored.get(key) != grade)


def log_warnings(path: Path, top: int = 8) -> dict[str, int]:
    """The server's most frequent warnings and errors (time and numbers left out), with their counts."""
    import re
    from collections import Counter

    lines = path.read_text(errors="replace").splitlines()
    found = Counter(
        re.sub(r"\d+", "N", line.split("WARNING" if "WARNING" in line else "ERROR", 1)[1]).strip()
        for line in lines
        if "WARNING" in line or "ERROR" in line
    )
    return dict(found.most_common(top))


def summarise(
    record: list[tuple[float, float, int]], bg: Background, started: float, seconds: float
) -> dict[str, Any]:
    grace = 5.0  # the requests in flight when a server died, and the first ones after it came back

    def during(r: tuple[float, float, int], down: float, up: float) -> bool:
        return down - grace <= r[0] <= up + grace

    inside = [r for r in record if any(during(r, down, up) for _, down, up in bg.outages)]
    outside = [r for r in record if not any(during(r, down, up) for _, down, up in bg.outages)]
    outages = [
        {
            "server": server,
            "at_s": round(down - started, 1),
            "seconds": round(up - down, 1),
            "5xx": sum(1 for r in record if during(r, down, up) and r[2] >= 500),
            "ok": sum(1 for r in record if during(r, down, up) and r[2] == 200),
        }
        for server, down, up in bg.outages
    ]
    buckets = []
    for lo in range(0, int(seconds), int(BUCKET_S)):
        ms = [r[1] for r in record if lo <= r[0] - started < lo + BUCKET_S]
        if ms:
            errors = sum(1 for r in record if lo <= r[0] - started < lo + BUCKET_S and r[2] >= 500)
            buckets.append({"t": lo, "requests": len(ms), "p50_ms": round(percentile(ms, 0.5), 1),
                            "p99_ms": round(percentile(ms, 0.99), 1), "5xx": errors})  # fmt: skip
    rss = [s["rss_mb"] for s in bg.samples]
    db = [s["db_mb"] for s in bg.samples]
    return {
        "soak_seconds": seconds,
        "soak_clients": SOAK_CLIENTS,
        "soak_requests": len(record),
        "soak_requests_per_s": round(len(record) / seconds, 1),
        "soak_5xx_outside_outage": sum(1 for r in outside if r[2] >= 500),
        "soak_no_answer_outside_outage": sum(1 for r in outside if r[2] == 0),
        "soak_5xx_during_outage": sum(1 for r in inside if r[2] >= 500),
        "soak_ok_during_outage": sum(1 for r in inside if r[2] == 200),
        "soak_outages": outages,
        "soak_p99_ms": round(percentile([r[1] for r in record], 0.99), 1),
        "soak_p99_per_bucket": buckets,
        "soak_rss_mb_first_last_max": [round(rss[0], 1), round(rss[-1], 1), round(max(rss), 1)]
        if rss
        else [],
        "soak_rss_mb_per_process_first_last_max": _per_process(bg.samples),
        "soak_rss_mb_per_min_after_warmup": _slope(bg.samples, "rss_mb", WARMUP_S),
        "soak_db_mb_per_min_after_warmup": _slope(bg.samples, "db_mb", WARMUP_S),
        "soak_db_mb_first_last_max": [round(db[0], 1), round(db[-1], 1), round(max(db), 1)] if db else [],
        "soak_feeds": bg.counts["feeds"],
        "soak_feeds_failed": bg.counts["feeds_failed"],
        "soak_refreshes": bg.counts["refreshes"],
        "soak_refreshes_failed": bg.counts["refreshes_failed"],
        "soak_labels_scored": sum(len(r.get("scored", [])) for r in bg.refresh_reports),
        "soak_labels_deleted": sum(len((r.get("gc") or {}).get("deleted", [])) for r in bg.refresh_reports),
        "soak_judgments_acknowledged": len(bg.judged),
        "soak_judge_failed": bg.counts["judge_failed"],
        "soak_load_avg_min_max": [
            round(min(s["load"] for s in bg.samples), 1),
            round(max(s["load"] for s in bg.samples), 1),
        ],  # fmt: skip
        "soak_samples": bg.samples,
    }


def plot(figures: dict[str, Any], path: Path) -> None:
    """p99/p50 per bucket, the server's RSS and the database size over the run (outage shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    buckets = figures["soak_p99_per_bucket"]
    middle = [b["t"] + BUCKET_S / 2 for b in buckets]
    axes[0].plot(middle, [b["p99_ms"] for b in buckets], marker="o", label="p99")
    axes[0].plot(middle, [b["p50_ms"] for b in buckets], marker="o", label="p50")
    axes[0].set_ylabel(f"search ms per {BUCKET_S:g} s")
    axes[0].set_yscale("log")
    axes[0].legend(loc="upper left")
    errors = axes[0].twinx()
    errors.bar(middle, [b["5xx"] for b in buckets], width=BUCKET_S * 0.8, color="red", alpha=0.3)
    errors.set_ylabel("5xx per bucket (bars)")
    errors.set_ylim(bottom=0)
    samples = figures["soak_samples"]
    axes[1].plot([s["t"] for s in samples], [s["rss_mb"] for s in samples], label="all processes")
    for name in figures["soak_rss_mb_per_process_first_last_max"]:
        shown = [(s["t"], s["rss_mb_by_process"][name]) for s in samples if name in s["rss_mb_by_process"]]
        axes[1].plot([t for t, _ in shown], [mb for _, mb in shown], linewidth=0.8, label=name)
    axes[1].set_ylabel("API server RSS (MB)")
    axes[1].legend(fontsize=7)
    axes[2].plot([s["t"] for s in samples], [s["db_mb"] for s in samples])
    axes[2].set_ylabel(f"search index ({figures['soak_search']}, MB)")
    axes[2].set_xlabel("seconds")
    colours = {"redis": "red", "opensearch": "orange"}
    for outage in figures["soak_outages"]:
        for ax in axes:
            ax.axvspan(
                outage["at_s"], outage["at_s"] + outage["seconds"], color=colours[outage["server"]], alpha=0.2
            )
    killed = " then ".join(f"{o['server']} ({colours[o['server']]})" for o in figures["soak_outages"])
    axes[0].set_title(
        f"soak: {SOAK_CLIENTS} clients, {figures['soak_requests']} searches, killed: {killed}, "
        f"load {figures['soak_load_avg_min_max'][0]}-{figures['soak_load_avg_min_max'][1]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def run() -> dict[str, Any]:
    seconds = float(os.environ.get("FRESHRANK_SOAK_SECONDS", "600"))
    settings = Settings()
    words = sorted({w.lower() for m in load_catalog(settings.movies_path).movies for w in m.title.split()
                    if w.isalpha() and len(w) > 4})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="freshrank-soak-") as tmp:
        ttl_days = str(LABEL_TTL_S / 86_400)
        search = os.environ.get("FRESHRANK_SOAK_SEARCH", "opensearch")
        env = {"FRESHRANK_RETENTION__LABEL_DAYS": ttl_days}
        stack = start_stack(Path(tmp), settings, env, search)
        try:
            record: list[tuple[float, float, int]] = []
            err.print(f"soak: {seconds:.0f} s, {SOAK_CLIENTS} clients, load {_load()}")
            started = time.time()
            with Background(stack, seconds, words) as bg:
                asyncio.run(clients(stack.base, SOAK_CLIENTS, seconds, record))
            figures = summarise(record, bg, started, seconds)
            figures["soak_search"] = search
            figures["soak_judgments_lost"] = judgments_lost(stack, bg.judged)
            figures["soak_api_warnings"] = log_warnings(stack.root / "api.log")
        finally:
            stop_stack(stack)
    plot(figures, Path(os.environ.get("FRESHRANK_SOAK_PLOT", "soak.png")))
    shown = {k: v for k, v in figures.items() if k not in ("soak_samples", "soak_p99_per_bucket")}
    err.print(f"soak: {shown}")
    return figures
