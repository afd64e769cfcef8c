"""Stage 5: relevance evaluation against human judgments."""

from freshrank.evaluate.base import Judgment, JudgmentStore

__all__ = ["Judgment", "JudgmentStore"]
