"""Process-wide circuit breakers, one per server address (pybreaker): a hung server costs one timeout, not one
per call. A breaker opens at the first counted failure; for ``reset_s`` seconds calls fail at once, then one
trial call decides whether it closes again. Errors that say the server is alive (a 4xx, a refusal) are not
counted. Used by the Redis trend store, the search engines' clients and the remote classifier.

pybreaker's own ``call`` holds the breaker's lock for the whole guarded call, so every request of a server
process through one breaker (every Redis read, every OpenSearch search) would wait in line: ``Breaker``
takes the lock only to read and change the state, and calls a closed circuit's function outside it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pybreaker

T = TypeVar("T")


class Breaker(pybreaker.CircuitBreaker):
    """A circuit breaker that lets calls through a closed circuit run at the same time."""

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            state = self.state
        if state.name != pybreaker.STATE_CLOSED:  # open or trying again: pybreaker's one call at a time
            return super().call(func, *args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            with self._lock:
                if self.state is state:  # still the closed state this call went through
                    state._handle_error(exc, reraise=False)  # counts it (a counted error opens the circuit)
            raise
        with self._lock:
            if self.state is state:
                state._handle_success()
        return result


_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_lock = threading.Lock()


def breaker_for(
    address: str, reset_s: float, counted: tuple[type[BaseException], ...]
) -> pybreaker.CircuitBreaker:
    """The breaker of the server at ``address`` (no credentials: it appears in messages)."""
    with _lock:
        if address not in _breakers:
            _breakers[address] = Breaker(
                fail_max=1,
                reset_timeout=reset_s,
                name=address,
                throw_new_error_on_trip=False,  # the first failure keeps its own error
                exclude=[lambda exc: not isinstance(exc, counted)],
            )
        return _breakers[address]


def open_message(breaker: pybreaker.CircuitBreaker, server: str) -> str:
    return f"circuit open, not retried yet: {server} {breaker.name} failed <{breaker.reset_timeout:g} s ago"
