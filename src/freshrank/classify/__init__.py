"""Stage 3: zero-shot classification of movies against trending labels."""

from freshrank.classify.base import Classifier

__all__ = ["Classifier"]
