"""Retention of trend scores: the backends' deletes on SQLite and the real OpenSearch and Elasticsearch, the
policy, and `refresh` / `freshrank gc` through the real CLI on a real catalogue database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshrank.catalog.models import Movie
from freshrank.config import RetentionSettings
from freshrank.loop.retention import LabelClock, plan, prune_cache
from freshrank.search.base import ScoreEntry, SearchBackend, SearchRequest
from freshrank.search.sqlite import SqliteBackend
from freshrank.trends import Trend, open_trend_store
from tests.conftest import SMALL_MOVIES
from tests.search.test_contract import BACKENDS, close_test_backend, open_test_backend

DAY = 86_400.0
MOVIES = [Movie.model_validate(row) for row in SMALL_MOVIES]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    backend = open_test_backend(request.param, tmp_path)
    backend.index(MOVIES)
    yield backend
    close_test_backend(backend)


def _scores(seed: int) -> dict[int, float]:
    """Positive scores for half the movies, zero for the rest (zeros are not stored)."""
    return {m.id: (0.1 * (i + seed) if i % 2 == 0 else 0.0) for i, m in enumerate(MOVIES)}


def _boosts(backend: SearchBackend, version: str, label: str) -> dict[int, float]:
    page = backend.search(SearchRequest(labels=(label,), model_version=version, limit=100))
    return {h.id: h.trend_scores[label] for h in page.hits if h.trend_scores[label] > 0}


def test_delete_scores_frees_one_label_and_keeps_the_others(engine: SearchBackend) -> None:
    for version in ("v-old", "v-new"):
        for seed, label in enumerate(("christmas", "zombies", "space")):
            engine.put_scores(version, label, _scores(seed + 1))
    entries = engine.score_entries()
    assert {(e.model_version, e.label) for e in entries} == {
        (v, label) for v in ("v-old", "v-new") for label in ("christmas", "zombies", "space")
    }
    assert all(e.scored_at > time.time() - 600 for e in entries)
    kept_before = _boosts(engine, "v-new", "christmas")
    assert len(kept_before) == 4

    # batch=1: one row (document) per transaction, the entry last
    assert engine.delete_scores("v-old", "christmas", batch=1) == 4
    assert engine.delete_scores("v-old", "christmas") == 0  # gone: a second delete is a no-op
    assert "christmas" not in engine.scored_labels("v-old")
    assert _boosts(engine, "v-old", "christmas") == {}
    assert _boosts(engine, "v-new", "christmas") == kept_before  # same label, other version: untouched
    assert len(_boosts(engine, "v-old", "zombies")) == 4
    assert len(engine.score_entries()) == 5
    assert engine.count() == len(MOVIES)  # movies are never deleted


def test_sqlite_deletes_never_block_searches(tmp_path: Path) -> None:
    """Readers keep answering while a large label is deleted in small transactions (WAL)."""
    url = f"sqlite:///{tmp_path / 'search.db'}"
    writer = SqliteBackend(url)
    writer.index(MOVIES)
    for n in range(40):
        writer.put_scores("v", f"label {n}", {i: 1.0 + n for i in range(1, 5_001)})
    reader = SqliteBackend(url, read_only=True)
    answered: list[int] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            answered.append(
                reader.search(SearchRequest(text="christmas", labels=("label 3",), model_version="v")).total
            )

    thread = threading.Thread(target=search)
    thread.start()
    used = writer.stored_bytes()
    freed = sum(writer.delete_scores("v", f"label {n}", batch=500) for n in range(40) if n != 3)
    stop.set()
    thread.join()
    assert freed == 39 * 5_000
    assert answered and set(answered) == {answered[0]}
    assert writer.stored_bytes() < used / 4
    assert writer.scored_labels("v") == {"label 3"}


POLICY = RetentionSettings(label_days=7, keep_versions=1)
NOW = 1_800_000_000.0


def _entry(version: str, label: str, days_ago: float) -> ScoreEntry:
    return ScoreEntry(version, label, NOW - days_ago * DAY)


def test_policy_deletes_stale_labels_and_retired_versions() -> None:
    entries = [
        _entry("champion", "fresh", 1),
        _entry("champion", "stale", 8),
        _entry("champion", "stale but seen", 30),
        _entry("champion", "stale but trending", 30),
        _entry("previous", "fresh", 2),
        _entry("older", "fresh", 3),
        _entry("oldest", "fresh", 4),
    ]
    seen = {"stale but seen": NOW - 2 * DAY, "stale": NOW - 9 * DAY}
    doomed = plan(entries, seen, "champion", ["stale but trending"], POLICY, NOW)
    assert {(d.entry.model_version, d.entry.label): d.reason for d in doomed} == {
        ("champion", "stale"): "not trending for 7 days",
        ("older", "fresh"): "model version retired",
        ("oldest", "fresh"): "model version retired",
    }
    # The current version unknown (classifier down): versions are left alone, stale labels still go.
    doomed = plan(entries, seen, "", [], POLICY, NOW)
    assert {d.entry.label for d in doomed} == {"stale", "stale but trending"}


def test_label_clock_keeps_the_latest_sighting_and_forgets_old_ones(tmp_path: Path) -> None:
    clock = LabelClock(tmp_path / "seen.db")
    clock.touch(["a", "b"], at=100.0)
    clock.touch(["a"], at=50.0)  # an older sighting never moves the clock back
    clock.touch(["a"], at=200.0)
    assert clock.last_seen() == {"a": 200.0, "b": 100.0}
    assert clock.forget_before(150.0) == 1
    assert clock.last_seen() == {"a": 200.0}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freshrank.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def _publish(state: Path, hashtags: list[str]) -> None:
    store = open_trend_store(f"sqlite:///{state / 'trends.db'}")
    store.replace([Trend(h, h.lstrip("#").lower(), 10.0 - i, 50, 1.0) for i, h in enumerate(hashtags)])
    store.close()


def test_refresh_and_gc_delete_what_stopped_trending(tmp_path: Path, small_catalog_file: Path) -> None:
    """The real CLI: refresh scores two trends; one stops trending; after label_days the next refresh (and
    `freshrank gc`) delete only its scores, and search still boosts the one that trends."""
    state = tmp_path / "state"
    env = {
        **os.environ,
        "FRESHRANK_STATE_DIR": str(state),
        "FRESHRANK_CLASSIFIER__NAME": "embedding",
        "FRESHRANK_RETENTION__LABEL_DAYS": str(2 / DAY),  # two seconds
        "FRESHRANK_RETENTION__GC_ON_REFRESH": "false",
    }
    assert _cli(["load", "-i", str(small_catalog_file), "--json"], env).returncode == 0
    _publish(state, ["#christmas", "#zombies"])
    first = _cli(["refresh", "--json"], env)
    assert first.returncode == 0, first.stderr
    assert sorted(json.loads(first.stdout)["scored"]) == ["christmas", "zombies"]

    rows_before = dict(
        sqlite3.connect(state / "search.db").execute(
            "SELECT label, COUNT(*) FROM trend_scores GROUP BY label"
        )
    )
    assert rows_before["zombies"] > 0
    _publish(state, ["#christmas"])
    time.sleep(2.5)
    gc = _cli(["gc", "--json"], env)
    assert gc.returncode == 0, gc.stderr
    report = json.loads(gc.stdout)["scores"]
    assert [(d["label"], d["reason"][:17]) for d in report["deleted"]] == [("zombies", "not trending for ")]
    assert report["entries"] == 2 and report["rows"] == rows_before["zombies"]
    assert report["bytes_after"] <= report["bytes_before"]
    assert json.loads(gc.stdout)["history"] == {
        "evaluation_runs": 0,
        "judgment_changes": 0,
        "cache_files": 0,
        "cache_bytes": 0,
    }

    backend = SqliteBackend(f"sqlite:///{state / 'search.db'}")
    [version] = {e.model_version for e in backend.score_entries()}
    assert {e.label for e in backend.score_entries()} == {"christmas"}
    page = _cli(["search", "--genre", "Family", "--json"], env)
    assert page.returncode == 0 and '"christmas"' in page.stdout

    # refresh runs retention itself: a label scored now and never trending again goes with the next refresh
    env["FRESHRANK_RETENTION__GC_ON_REFRESH"] = "true"
    assert _cli(["refresh", "--trend", "#zombies", "--json"], env).returncode == 0
    time.sleep(2.5)
    again = json.loads(_cli(["refresh", "--json"], env).stdout)
    assert [d["label"] for d in again["gc"]["deleted"]] == ["zombies"]
    assert backend.scored_labels(version) == {"christmas"}


def test_prune_cache_deletes_encodings_not_used_lately(tmp_path: Path) -> None:
    old, used, other = (tmp_path / name for name in ("emb-a.npy", "emb-b.npy", "model.onnx"))
    for path in (old, used, other):
        path.write_bytes(b"x" * 100)
        os.utime(path, (NOW - 40 * DAY, NOW - 40 * DAY))
    os.utime(used, (NOW - DAY, NOW - DAY))
    assert prune_cache(tmp_path, 30 * DAY, now=NOW) == {"cache_files": 1, "cache_bytes": 100}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb-b.npy", "model.onnx"]
    assert prune_cache(tmp_path / "missing", 30 * DAY) == {"cache_files": 0, "cache_bytes": 0}
