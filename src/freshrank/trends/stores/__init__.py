"""Trend stores picked by URL: ``sqlite:///path`` (embedded default) or ``redis://host:port/db?prefix=…``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from freshrank.trends.base import TrendStore

DEFAULT_TTL_SECONDS = 3600


def open_trend_store(url: str, ttl_seconds: int | None = None) -> TrendStore:
    """Open the store named by ``url``; ``?ttl=SECONDS`` in the URL overrides ``ttl_seconds``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    ttl = int(query["ttl"][0]) if "ttl" in query else (ttl_seconds or DEFAULT_TTL_SECONDS)
    if parts.scheme == "sqlite":
        from freshrank.trends.stores.sqlite import SQLiteTrendStore

        return SQLiteTrendStore(url, ttl_seconds=ttl)
    if parts.scheme in ("redis", "rediss", "unix"):
        from freshrank.trends.stores.redis import RedisTrendStore

        return RedisTrendStore(url, ttl_seconds=ttl)
    raise ValueError(f"unsupported trend store URL {url!r}: use sqlite:///path or redis://host:port/db")
