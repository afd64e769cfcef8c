"""The process-wide circuit breaker: calls through a closed circuit run side by side (pybreaker's own holds a
lock around each call, which queued every Redis read and engine search of a server process), a counted
failure opens it, an uncounted one does not, and a trial call after the reset time closes it again."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pybreaker
import pytest

from freshrank.breakers import breaker_for


def _breaker(reset_s: float = 0.3) -> pybreaker.CircuitBreaker:
    return breaker_for(f"test-{uuid.uuid4().hex}:1", reset_s, (ConnectionError,))


def test_calls_through_a_closed_circuit_run_at_the_same_time() -> None:
    breaker = _breaker()
    barrier = threading.Barrier(4, timeout=5)  # passes only when four calls are inside at once

    def call() -> int:
        return breaker.call(barrier.wait)

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(lambda _: call(), range(4))) == [0, 1, 2, 3]


def test_a_counted_failure_opens_the_circuit_until_a_trial_succeeds() -> None:
    breaker = _breaker()

    def refused() -> None:
        raise ValueError("a 4xx: the server is alive")

    def down() -> None:
        raise ConnectionError("server gone")

    with pytest.raises(ValueError):
        breaker.call(refused)
    assert breaker.current_state == pybreaker.STATE_CLOSED
    with pytest.raises(ConnectionError):
        breaker.call(down)
    assert breaker.current_state == pybreaker.STATE_OPEN
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(lambda: 1)  # fails at once, the function is not called
    time.sleep(0.35)
    assert breaker.call(lambda: 7) == 7
    assert breaker.current_state == pybreaker.STATE_CLOSED
