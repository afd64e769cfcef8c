"""Stage 4: trend-boosted movie search. ``open_backend(url)`` picks the engine by URL."""

from __future__ import annotations

from collections.abc import Mapping

from freshrank.search.base import SearchBackend, SearchHit, SearchPage, SearchRequest


def open_backend(
    url: str, field_weights: Mapping[str, float] | None = None, *, read_only: bool = False
) -> SearchBackend:
    """``sqlite:///path.db`` (embedded FTS5), ``opensearch://host:port[/index]`` or ``elasticsearch://…``.

    ``read_only`` opens an existing SQLite file read-only (a search then cannot write); servers ignore it.
    """
    if url.startswith("sqlite:"):
        from freshrank.search.sqlite import SqliteBackend

        return SqliteBackend(url, field_weights=field_weights, read_only=read_only)
    if url.startswith(("opensearch://", "opensearchs://")):
        from freshrank.search.opensearch import OpenSearchBackend

        return OpenSearchBackend(url, field_weights=field_weights)
    if url.startswith(("elasticsearch://", "elasticsearchs://")):
        from freshrank.search.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend(url, field_weights=field_weights)
    raise ValueError(
        f"unknown search backend URL {url!r}: expected sqlite:///…, opensearch://host:port[/index] "
        "or elasticsearch://[user:pass@]host:port[/index]"
    )


__all__ = ["SearchBackend", "SearchHit", "SearchPage", "SearchRequest", "open_backend"]
