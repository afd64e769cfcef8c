"""Stage 1: the movie catalogue (load, validate, report bad rows)."""

from freshrank.catalog.models import Movie

__all__ = ["Movie"]
