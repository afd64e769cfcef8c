"""A paused (SIGSTOP) Redis, not a dead one: one call waits for the timeout, then the circuit is open and
calls fail at once; search answers with the last known trends and a warning; health answers degraded."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from freshrank.config import Settings
from freshrank.search import open_backend
from freshrank.search.service import SearchService
from freshrank.trends.base import Trend
from freshrank.trends.stores.redis import CircuitOpen, RedisTrendStore

TRENDS = [Trend("#christmas", "christmas", 9.0, 50, 1.0), Trend("#zombies", "zombies", 4.0, 20, 1.0)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own on a free port (pausing the shared one would stall other tests)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (bash scripts/install-system-deps.sh)")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield url, process
    os.kill(process.pid, signal.SIGCONT)
    process.terminate()
    process.wait(timeout=10)


def test_a_paused_redis_costs_one_timeout_then_the_circuit_is_open(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = private_redis
    store = RedisTrendStore(f"{url}?prefix=hung-store&timeout=0.5&reset=1")
    store.replace(TRENDS)
    os.kill(process.pid, signal.SIGSTOP)
    with pytest.raises(redis.TimeoutError):
        store.top()  # the one call that waits
    for _ in range(3):
        with pytest.raises(CircuitOpen, match="not retried yet"):
            store.top()  # not tried at all
    # Another store on the same server (a new search request, a reopened store) shares the breaker.
    with pytest.raises(CircuitOpen):
        RedisTrendStore(f"{url}?prefix=hung-other&timeout=0.5&reset=1").top()
    os.kill(process.pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while True:  # after the reset time one trial call goes through and closes the circuit
        try:
            assert [t.hashtag for t in store.top()] == ["#christmas", "#zombies"]
            break
        except CircuitOpen:
            assert time.monotonic() < deadline, "the circuit never closed again"
            time.sleep(0.2)


def test_search_answers_with_the_last_known_trends_while_redis_hangs(
    private_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, process = private_redis
    settings = Settings(state_dir=tmp_path / "state", trend_store_url=f"{url}?prefix=hung-search&timeout=0.5")
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
