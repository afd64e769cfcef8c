"""Process-wide circuit breakers, one per server address (pybreaker): a hung server costs one timeout, not one
per call. A breaker opens at the first counted failure; for ``reset_s`` seconds calls fail at once, then one
trial call decides whether it closes again. Errors that say the server is alive (a 4xx, a refusal) are not
counted. Used by the Redis trend store, the search engines' clients and the remote classifier."""

from __future__ import annotations

import threading

import pybreaker

_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_lock = threading.Lock()


def breaker_for(
    address: str, reset_s: float, counted: tuple[type[BaseException], ...]
) -> pybreaker.CircuitBreaker:
    """The breaker of the server at ``address`` (no credentials: it appears in messages)."""
    with _lock:
        if address not in _breakers:
            _breakers[address] = pybreaker.CircuitBreaker(
                fail_max=1,
                reset_timeout=reset_s,
                name=address,
                throw_new_error_on_trip=False,  # the first failure keeps its own error
                exclude=[lambda exc: not isinstance(exc, counted)],
            )
        return _breakers[address]


def open_message(breaker: pybreaker.CircuitBreaker, server: str) -> str:
    return f"circuit open, not retried yet: {server} {breaker.name} failed <{breaker.reset_timeout:g} s ago"
