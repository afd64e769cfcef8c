"""Stage 4: trend-boosted movie search. ``open_backend(url)`` picks the engine by URL."""

from __future__ import annotations

from collections.abc import Mapping

from freshrank.config import SearchSettings, Settings
from freshrank.search.base import SearchBackend, SearchHit, SearchPage, SearchRequest


def open_settings_backend(settings: Settings, *, read_only: bool = False) -> SearchBackend:
    """The configured backend with the configured field weights, timeouts and breaker."""
    url, search = settings.resolved_search_url, settings.search
    return open_backend(url, search.field_weights, read_only=read_only, limits=search)


def open_backend(
    url: str,
    field_weights: Mapping[str, float] | None = None,
    *,
    read_only: bool = False,
    limits: SearchSettings | None = None,
) -> SearchBackend:
    """``sqlite:///path.db`` (embedded FTS5), ``opensearch://host:port[/index]`` or ``elasticsearch://…``.

    ``read_only`` opens an existing SQLite file read-only (a search then cannot write); servers ignore it.
    ``limits``: the servers' timeouts and breaker reset (default: the settings' defaults).
    """
    limits = limits or SearchSettings()
    timeout, write_timeout = limits.timeout_seconds, limits.write_timeout_seconds
    reset = limits.breaker_reset_seconds
    if url.startswith("sqlite:"):
        from freshrank.search.sqlite import SqliteBackend

        return SqliteBackend(url, field_weights=field_weights, read_only=read_only)
    if url.startswith(("opensearch://", "opensearchs://")):
        from freshrank.search.opensearch import OpenSearchBackend

        return OpenSearchBackend(
            url, field_weights, timeout, write_timeout=write_timeout, breaker_reset=reset
        )
    if url.startswith(("elasticsearch://", "elasticsearchs://")):
        from freshrank.search.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend(
            url, field_weights, timeout, write_timeout=write_timeout, breaker_reset=reset
        )
    raise ValueError(
        f"unknown search backend URL {url!r}: expected sqlite:///…, opensearch://host:port[/index] "
        "or elasticsearch://[user:pass@]host:port[/index]"
    )


__all__ = [
    "SearchBackend",
    "SearchHit",
    "SearchPage",
    "SearchRequest",
    "open_backend",
    "open_settings_backend",
]
