"""Circuit breakers for the search servers: a hung OpenSearch or Elasticsearch costs one timeout, not one per
request. One breaker per server address in the process (pybreaker), opened at the first connection failure or
timeout; for ``RESET_S`` seconds calls fail at once, then one trial call decides whether it closes again.
Refusals (4xx, a missing index) say the server is alive and leave it closed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pybreaker

from freshrank import breakers
from freshrank.breakers import open_message

__all__ = ["RESET_S", "breaker_for", "open_message"]

RESET_S = 3.0


def breaker_for(
    base_url: str, counted: tuple[type[BaseException], ...], reset_s: float = RESET_S
) -> pybreaker.CircuitBreaker:
    """The process-wide breaker of the server at ``base_url``; only ``counted`` errors open it."""
    parts = urlsplit(base_url)
    return breakers.breaker_for(f"{parts.hostname}:{parts.port}", reset_s, counted)
