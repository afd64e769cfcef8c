"""A paused (SIGSTOP) Redis, not a dead one: one call waits for the timeout, then the circuit is open and
calls fail at once; search answers with the last known trends and a warning; health answers degraded."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from freshrank.bench.servers import free_port, start_redis
from freshrank.config import Settings
from freshrank.search import open_backend
from freshrank.search.service import SearchService
from freshrank.trends.base import Trend
from freshrank.trends.stores.redis import CircuitOpen, RedisTrendStore

TRENDS = [Trend("#christmas", "christmas", 9.0, 50, 1.0), Trend("#zombies", "zombies", 4.0, 20, 1.0)]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own on a free port (pausing the shared one would stall other tests)."""
    port = free_port()
    try:
        process = start_redis(tmp_path, port)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield f"redis://127.0.0.1:{port}/0", process
    os.kill(process.pid, signal.SIGCONT)
    process.terminate()
    process.wait(timeout=10)


def _until_closed(store: RedisTrendStore) -> list[str]:
    """The stored hashtags, once a trial call has closed the circuit again (tried for 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return [t.hashtag for t in store.top()]
        except redis.ConnectionError:  # CircuitOpen, or a trial call still slow on a busy box
            assert time.monotonic() < deadline, "the circuit never closed again"
            time.sleep(0.2)


def test_a_paused_redis_costs_one_timeout_then_the_circuit_is_open(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = private_redis
    # Timeout 2 s: live calls must not time out on a loaded box (load 15); reset 10 s: the checks of the open
    # circuit below must all fall inside one open period however slowly they run.
    store = RedisTrendStore(f"{url}?prefix=hung-store&timeout=2&reset=10")
    store.replace(TRENDS)
    os.kill(process.pid, signal.SIGSTOP)
    with pytest.raises(redis.TimeoutError):
        store.top()  # the one call that waits
    for _ in range(3):
        with pytest.raises(CircuitOpen, match="not retried yet"):
            store.top()  # not tried at all
    # Another store on the same server (a new search request, a reopened store) shares the breaker.
    with pytest.raises(CircuitOpen):
        RedisTrendStore(f"{url}?prefix=hung-other&timeout=2&reset=10").top()
    os.kill(process.pid, signal.SIGCONT)
    # After the reset time one trial call goes through and closes the circuit.
    assert _until_closed(store) == ["#christmas", "#zombies"]


def test_search_answers_with_the_last_known_trends_while_redis_hangs(
    private_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, process = private_redis
    settings = Settings(
        state_dir=tmp_path / "state", trend_store_url=f"{url}?prefix=hung-search&timeout=2&reset=30"
    )
    RedisTrendStore(settings.trend_store_url).replace(TRENDS)
    backend = open_backend(f"sqlite:///{tmp_path / 'search.db'}")
    service = SearchService(settings, backend)
    assert service.current_labels([]) == ["christmas", "zombies"]  # seen live: now the last known
    assert service.health()["trends"] == "ok"
    os.kill(process.pid, signal.SIGSTOP)
    seen = []
    for _ in range(3):
        warnings: list[str] = []
        assert service.current_labels(warnings) == ["christmas", "zombies"]
        assert len(warnings) == 1 and warnings[0].startswith("trend store unavailable")
        assert warnings[0].endswith("using last known trends")
        seen.append(warnings[0])
    # The first waited for the timeout; the others were answered at once, without a call to Redis.
    assert "not retried yet" not in seen[0] and all("not retried yet" in w for w in seen[1:])
    page = service.search("")
    assert any(w.startswith("trend store unavailable") for w in page.warnings)
    health = service.health()
    assert health["trends"].startswith("degraded") and "not retried yet" in health["trends"]
