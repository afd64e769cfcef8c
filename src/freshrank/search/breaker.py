"""Circuit breakers for the search servers: a hung OpenSearch or Elasticsearch costs one timeout, not one per
request. One breaker per server address in the process (pybreaker), opened at the first connection failure or
timeout; for ``RESET_S`` seconds calls fail at once, then one trial call decides whether it closes again.
Refusals (4xx, a missing index) say the server is alive and leave it closed."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pybreaker

RESET_S = 3.0

_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_lock = threading.Lock()


def breaker_for(base_url: str, counted: tuple[type[BaseException], ...]) -> pybreaker.CircuitBreaker:
    """The process-wide breaker of the server at ``base_url``; only ``counted`` errors open it."""
    parts = urlsplit(base_url)
    address = f"{parts.hostname}:{parts.port}"  # no credentials in messages
    with _lock:
        if address not in _breakers:
            _breakers[address] = pybreaker.CircuitBreaker(
                fail_max=1,
                reset_timeout=RESET_S,
                name=address,
                throw_new_error_on_trip=False,  # the first failure keeps its own error
                exclude=[lambda exc: not isinstance(exc, counted)],
            )
        return _breakers[address]


def open_message(breaker: pybreaker.CircuitBreaker, server: str) -> str:
    return f"circuit open, not retried yet: {server} {breaker.name} failed <{breaker.reset_timeout:g} s ago"
