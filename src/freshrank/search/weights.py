"""How much each trending label's boost counts: a softmax over the trends' burst strengths.

``w_l = exp((z_l − z_max) / τ) / Σ_k exp((z_k − z_max) / τ)`` over the distinct labels of the current
trends (``z``: the burst score of ``trends/score.py``; a label of several trends takes the strongest;
``τ = search.trend_temperature``), then capped: when the labels weaker than the strongest weigh more in
total than the strongest label(s), they are scaled down to weigh exactly as much, and everything is
normalised to sum 1. So a movie's trend boost is a weighted average of its label scores: with one trend it
is that trend's score (weight 1, as in isolation); a crowd of weak trends, however many, never weighs more
than the strongest trend (``n`` trends ``δ`` below it weigh ``n · exp(−δ / τ)`` against its 1, at most 1).
``τ ≤ 0`` turns weighting off (every label 1.0, the plain sum).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from freshrank.trends.base import Trend


def trend_weights(trends: Iterable[Trend], temperature: float) -> dict[str, float]:
    """Label → weight for the labels of ``trends`` (best first order kept)."""
    strength: dict[str, float] = {}
    for trend in trends:
        if trend.label:
            strength[trend.label] = max(strength.get(trend.label, -math.inf), trend.score)
    if temperature <= 0 or not strength:
        return dict.fromkeys(strength, 1.0)
    top = max(strength.values())
    raw = {label: math.exp((z - top) / temperature) for label, z in strength.items()}
    strongest = sum(1.0 for z in strength.values() if z == top)
    weaker = sum(raw.values()) - strongest
    scale = min(1.0, strongest / weaker) if weaker > 0 else 1.0
    raw = {label: value if strength[label] == top else value * scale for label, value in raw.items()}
    total = sum(raw.values())
    return {label: value / total for label, value in raw.items()}
