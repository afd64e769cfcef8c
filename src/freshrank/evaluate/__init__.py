"""Stage 5: relevance evaluation against human judgments.

``open_judgment_store(url)`` opens the judgments database; ``freshrank.evaluate.metrics`` holds the metric
definitions; ``freshrank.evaluate.runner.evaluate_judgments`` ranks and scores every judged group.
"""

from freshrank.evaluate.base import EvaluationRun, ImportResult, Judgment, JudgmentChange, JudgmentStore
from freshrank.evaluate.store import SqlJudgmentStore, StoreUnavailable, open_judgment_store

__all__ = [
    "EvaluationRun",
    "ImportResult",
    "Judgment",
    "JudgmentChange",
    "JudgmentStore",
    "SqlJudgmentStore",
    "StoreUnavailable",
    "open_judgment_store",
]
