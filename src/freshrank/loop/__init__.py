"""Stage 5: the scoring loop. Trend store → classifier → calibrated scores → search backend.

The only writer of trend scores and of the search index: ``ScoringLoop.load`` indexes a catalogue,
``ScoringLoop.refresh`` scores the labels the current model lacks. Search (``freshrank.search``) only reads.
"""

from __future__ import annotations

from freshrank.loop.adhoc import AdhocCache, RateLimited
from freshrank.loop.scores import Calibration, RefreshReport, scores_version
from freshrank.loop.service import LoadReport, ScoringLoop

__all__ = [
    "AdhocCache",
    "Calibration",
    "LoadReport",
    "RateLimited",
    "RefreshReport",
    "ScoringLoop",
    "scores_version",
]
