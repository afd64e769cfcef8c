"""Compare two systems on the same queries: per-query deltas and paired significance tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freshrank.evaluate.runner import SystemResult

DEFAULT_RESAMPLES = 10_000


@dataclass(frozen=True)
class Significance:
    """Paired tests of ``b - a`` over queries (two-sided)."""

    n: int
    mean_delta: float
    t_pvalue: float
    randomization_pvalue: float
    resamples: int  # 2^n when the randomization test was exact

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean_delta": self.mean_delta,
            "t_test_p": _json_float(self.t_pvalue),
            "randomization_p": _json_float(self.randomization_pvalue),
            "resamples": self.resamples,
        }


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def paired_test(
    a: Sequence[float], b: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Significance:
    """Paired t-test (scipy ``ttest_rel``) and paired randomization test (sign flips of the deltas; exact when
    ``2^n <= resamples``). Identical systems get p = 1; fewer than 2 queries get NaN."""
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired test needs the same queries: {len(a)} vs {len(b)} values")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n, delta = len(x), y - x
    mean_delta = float(delta.mean()) if n else 0.0
    if n < 2:
        return Significance(n, mean_delta, math.nan, math.nan, 0)
    if np.allclose(delta, 0.0):
        return Significance(n, mean_delta, 1.0, 1.0, 0)
    t_p = float(stats.ttest_rel(y, x).pvalue)
    if math.isnan(t_p):  # every delta equal and non-zero: no variance, the t statistic is infinite
        t_p = 0.0
    perm = stats.permutation_test(
        (y, x),
        lambda u, v, axis: np.mean(u - v, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    exact = 2**n <= resamples
    return Significance(n, mean_delta, t_p, float(perm.pvalue), 2**n if exact else resamples)


@dataclass
class Comparison:
    """System ``b`` against system ``a`` on the queries both evaluated."""

    a: str
    b: str
    metric: str
    deltas: dict[str, float]  # per query: b - a
    mean_a: dict[str, float]
    mean_b: dict[str, float]
    significance: Significance
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "metric": self.metric,
            "mean": {"a": self.mean_a, "b": self.mean_b},
            "delta": {
                name: self.mean_b[name] - self.mean_a[name] for name in self.mean_a if name in self.mean_b
            },
            "per_query_delta": self.deltas,
            "significance": self.significance.to_json(),
            "warnings": self.warnings,
        }


def compare_systems(
    a: SystemResult, b: SystemResult, metric: str = "ndcg@10", resamples: int = DEFAULT_RESAMPLES
) -> Comparison:
    """Per-query deltas of ``metric`` (b - a) and paired tests over the shared queries."""
    shared = [qid for qid in a.per_query if qid in b.per_query]
    if not shared:
        raise ValueError(f"{a.name} and {b.name} share no queries")
    if any(metric not in a.per_query[q] for q in shared):
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(next(iter(a.per_query.values())))}")
    xs = [a.per_query[q][metric] for q in shared]
    ys = [b.per_query[q][metric] for q in shared]
    return Comparison(
        a=a.name,
        b=b.name,
        metric=metric,
        deltas={q: y - x for q, x, y in zip(shared, xs, ys, strict=True)},
        mean_a=a.mean,
        mean_b=b.mean,
        significance=paired_test(xs, ys, resamples),
    )
