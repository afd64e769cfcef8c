"""Stage 2: trend detection (hashtags, sliding windows, burst scores, stores)."""

from freshrank.trends.base import Trend, TrendStore
from freshrank.trends.stores import open_trend_store

__all__ = ["Trend", "TrendStore", "open_trend_store"]
