"""Paired significance on constructed cases, and per-query deltas."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from freshrank.evaluate.compare import compare_systems, paired_test
from freshrank.evaluate.runner import SystemResult, judged_warnings


def test_consistent_improvement_is_significant() -> None:
    rng = random.Random(3)
    a = [rng.uniform(0.2, 0.6) for _ in range(30)]
    b = [x + 0.1 + rng.uniform(-0.02, 0.02) for x in a]
    sig = paired_test(a, b)
    assert sig.mean_delta == pytest.approx(0.1, abs=0.01)
    assert sig.t_pvalue < 1e-6
    assert sig.randomization_pvalue < 0.001
    assert sig.t_pvalue == pytest.approx(stats.ttest_rel(b, a).pvalue)


def test_exact_randomization_p_for_five_queries() -> None:
    # All 5 deltas positive: of the 2^5 sign flips only "all +" and "all -" are as extreme (two-sided).
    sig = paired_test([0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.4, 0.5, 0.7, 0.9])
    assert sig.resamples == 32
    assert sig.randomization_pvalue == pytest.approx(2 / 32)


def test_noise_is_not_significant_and_identical_is_one() -> None:
    rng = random.Random(5)
    a = [rng.random() for _ in range(40)]
    b = [x + rng.gauss(0, 0.2) for x in a]
    sig = paired_test(a, b)
    assert sig.t_pvalue > 0.05 and sig.randomization_pvalue > 0.05
    same = paired_test(a, a)
    assert (same.t_pvalue, same.randomization_pvalue) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same queries"):
        paired_test([1.0], [1.0, 2.0])


def test_compare_systems_reports_per_query_deltas_and_judged_warnings() -> None:
    a = SystemResult(
        "baseline", {"q1|": {"ndcg@10": 0.2, "judged@10": 1.0}, "q2|": {"ndcg@10": 0.5, "judged@10": 0.9}}
    )
    b = SystemResult(
        "boosted", {"q1|": {"ndcg@10": 0.6, "judged@10": 0.3}, "q2|": {"ndcg@10": 0.4, "judged@10": 0.8}}
    )
    comparison = compare_systems(a, b)
    assert comparison.deltas == pytest.approx({"q1|": 0.4, "q2|": -0.1})
    doc = comparison.to_json()
    assert doc["delta"]["ndcg@10"] == pytest.approx(0.15)
    assert set(doc["significance"]) == {"n", "mean_delta", "t_test_p", "randomization_p", "resamples"}
    assert judged_warnings(b, 10, 0.5) == ["boosted q1|: only 30% of the top 10 is judged (< 50%)"]
    with pytest.raises(ValueError, match="unknown metric"):
        compare_systems(a, b, metric="map")
