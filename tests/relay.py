"""A relay (``freshrank.bench.servers.Relay``) in front of a real server for a fault test: to the client the
server hangs (paused relay), dies (stopped) or restarts (started again), while the shared server keeps serving
every other test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from freshrank.bench.servers import Relay

__all__ = ["Relay", "relay_to"]


@contextmanager
def relay_to(target: str) -> Iterator[Relay]:
    """A running relay to ``target`` (host:port), stopped on exit."""
    relay = Relay(target)
    try:
        relay.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield relay
    finally:
        relay.stop()
