"""Stage 2: trend detection (hashtags, sliding windows, burst scores, stores)."""

from freshrank.trends.base import Trend, TrendStore

__all__ = ["Trend", "TrendStore"]
