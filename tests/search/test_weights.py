"""Label weights of the current trends: stronger trends count more, a crowd of weak ones cannot outweigh
one strong one, a single trend boosts as in isolation."""

from __future__ import annotations

import math

import pytest

from freshrank.search.weights import trend_weights
from freshrank.trends.base import Trend


def trend(label: str, z: float) -> Trend:
    return Trend("#" + label.replace(" ", ""), label, z, 10, 1.0)


def test_a_single_trend_weighs_one() -> None:
    assert trend_weights([trend("christmas", 12.7)], 2.0) == {"christmas": 1.0}


def test_weights_follow_strength_and_sum_to_one() -> None:
    weights = trend_weights([trend("a", 10.0), trend("b", 8.0), trend("c", 8.0)], 2.0)
    assert weights["a"] > weights["b"] == weights["c"]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["b"] / weights["a"] == pytest.approx(math.exp(-1.0))


def test_nineteen_weak_trends_cannot_outweigh_one_strong_one() -> None:
    """The demo's case: #christmas (z 12.8) among 19 trends at z 5 (the threshold)."""
    crowd = [trend("christmas", 12.8)] + [trend(f"weak {i}", 5.0) for i in range(19)]
    weights = trend_weights(crowd, 2.0)
    weak = sum(w for label, w in weights.items() if label != "christmas")
    assert weights["christmas"] == pytest.approx(1 / (1 + 19 * math.exp(-3.9)))  # 0.72: below the cap
    # a movie scoring 1.0 on every weak label gets less boost than one scoring 1.0 on the strong label
    assert weak < weights["christmas"]


@pytest.mark.parametrize("weak_count", [19, 200])
def test_the_cap_holds_however_many_weak_trends(weak_count: int) -> None:
    crowd = [trend("strong", 8.0)] + [trend(f"weak {i}", 7.0) for i in range(weak_count)]
    weights = trend_weights(crowd, 2.0)
    assert weights["strong"] == pytest.approx(0.5)
    assert all(weights[f"weak {i}"] == pytest.approx(0.5 / weak_count) for i in range(weak_count))


def test_a_label_of_several_trends_takes_the_strongest_and_zero_temperature_is_the_plain_sum() -> None:
    weights = trend_weights([trend("shark week", 3.0), trend("shark week", 9.0), trend("other", 9.0)], 1.0)
    assert weights == {"shark week": 0.5, "other": 0.5}
    assert trend_weights([trend("a", 9.0), trend("b", 1.0)], 0.0) == {"a": 1.0, "b": 1.0}
