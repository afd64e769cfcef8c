"""A client-side read timeout for psycopg 3, which has none: ``statement_timeout`` is enforced by the server,
so a paused (hung) server would keep a query waiting forever. Every wait for the server's answer here ends
after ``read_timeout`` seconds; the connection is then closed (its state is unknown) and the error is a
``ReadTimeout`` (an ``OperationalError``) that SQLAlchemy treats as a lost connection."""

from __future__ import annotations

import time
from typing import Any

import psycopg


class ReadTimeout(psycopg.OperationalError):
    """The server sent no answer within the read timeout (hung, not dead)."""


class TimedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after ``read_timeout`` seconds."""

    read_timeout: float = 5.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """Consume ``gen`` (psycopg's wait), bounded by ``read_timeout`` unless a timeout is given."""
        bound = self.read_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            return super().wait(gen, interval=interval, timeout=bound)
        except psycopg.OperationalError as exc:
            if exc.sqlstate is not None or time.monotonic() - started < bound:
                raise  # the server answered with an error, or the connection broke: not a hang
            self.pgconn.finish()  # the connection's state is unknown: it cannot be reused
            raise ReadTimeout(f"no answer within {bound:g} s (server hung?)") from exc


def timed_connection(read_timeout: float) -> type[TimedConnection]:
    """A ``TimedConnection`` class with its own read timeout (one per store)."""
    return type("TimedConnection", (TimedConnection,), {"read_timeout": read_timeout})
