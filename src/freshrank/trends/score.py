"""The burst score: a Poisson test of a tag's window count against the count expected from its history and
the stream's volume (shared by the embedded engine and the Flink job, whose Java ``Score`` is pinned to this
module by ``tests/trends/test_flink_units.py``).

At a tick, for a tag with ``c`` posts in the current window and ``p`` in the previous one, in a stream whose
tags were used ``V`` times in the current window and ``Vp`` times in the previous one (sums over all tags):

* ``x = min(c, posts_per_author · authors)`` when the source carries authors (one account posting a tag
  200 times is one voice, not 200), else ``x = c``;
* expected ``λ = p · (V + 1) / (Vp + 1) + prior_share · (V + 1)``: the tag's own history, rescaled by the
  stream's change in volume (a stream that doubles in the evening does not make every tag trend), plus a
  prior from the stream's volume: every tag is expected to hold at least a share ``prior_share`` of the
  stream. This is additive (Dirichlet) smoothing of the tag's share of the stream, so unseen tags shrink
  toward the prior instead of having an expectation of zero, and the bar rises with the volume (ten posts
  in a firehose are chance, ten posts in a small stream are not);
* ``z = sign(x − λ) · sqrt(2 · (x · ln(x / λ) − (x − λ)))``: the signed root of the Poisson likelihood-ratio
  statistic (the deviance residual), approximately standard normal under "no burst"; the one-sided
  p-value is ``Φ(−z)``. A tag trends when ``z ≥ min_z``; ranking: ``z`` descending.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from freshrank.config import TrendSettings


class BurstTest(Protocol):
    """What the engine asks of a score: the evidence, its expected value, the statistic and its bar.

    The evidence is at most the count, and ``z`` never decreases as the evidence grows (the engine rules
    tags out on ``z(count)`` before counting their authors).
    """

    @property
    def min_z(self) -> float: ...

    def evidence(self, count: int, authors: int | None) -> int: ...

    def expected(self, baseline: float, volume: int, prev_volume: int) -> float: ...

    def z(self, evidence: int, expected: float) -> float: ...


@dataclass(frozen=True, slots=True)
class VelocityModel:
    """The former score ``(c − p) / sqrt(p + 1)`` with no bar: the detection benchmark's "before"."""

    min_z: float = -math.inf

    def evidence(self, count: int, authors: int | None) -> int:
        return count

    def expected(self, baseline: float, volume: int, prev_volume: int) -> float:
        return baseline

    def z(self, evidence: int, expected: float) -> float:
        return (evidence - expected) / math.sqrt(expected + 1)


@dataclass(frozen=True, slots=True)
class BurstModel:
    """The parameters of the burst test (from ``TrendSettings``)."""

    prior_share: float
    posts_per_author: int
    min_z: float

    @classmethod
    def of(cls, settings: TrendSettings) -> BurstModel:
        return cls(float(settings.prior_share), int(settings.posts_per_author), float(settings.min_z))

    def evidence(self, count: int, authors: int | None) -> int:
        """``x``: the posts that count as evidence (capped per distinct author when authors are known)."""
        return count if authors is None else min(count, self.posts_per_author * authors)

    def expected(self, baseline: float, volume: int, prev_volume: int) -> float:
        """``λ``: the count expected in the current window without a burst."""
        return baseline * (volume + 1) / (prev_volume + 1) + self.prior_share * (volume + 1)

    def z(self, evidence: int, expected: float) -> float:
        """Signed root of the Poisson likelihood-ratio statistic of ``evidence`` against ``expected``."""
        return burst_z(evidence, expected)


def burst_z(x: float, lam: float) -> float:
    """``sign(x − λ) · sqrt(2 (x ln(x/λ) − (x − λ)))`` (``x ln(x/λ)`` = 0 at ``x`` = 0)."""
    term = x * math.log(x / lam) if x > 0 else 0.0
    root = math.sqrt(max(2.0 * (term - (x - lam)), 0.0))
    return root if x > lam else -root if x < lam else 0.0


def p_value(z: float) -> float:
    """One-sided p-value of ``z`` under the standard normal (``Φ(−z)``)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))
