"""Stage 1: the movie catalogue (load, validate, report bad rows)."""

from freshrank.catalog.loader import CatalogFileError, CatalogLoad, RowError, load_catalog
from freshrank.catalog.models import Movie

__all__ = ["CatalogFileError", "CatalogLoad", "Movie", "RowError", "load_catalog"]
