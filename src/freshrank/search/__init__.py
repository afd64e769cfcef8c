"""Stage 4: trend-boosted movie search."""

from freshrank.search.base import SearchBackend, SearchHit, SearchPage, SearchRequest

__all__ = ["SearchBackend", "SearchHit", "SearchPage", "SearchRequest"]
