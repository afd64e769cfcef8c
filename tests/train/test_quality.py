"""Ranking-quality helper: fast nDCG@10 equals ranx; leave-one-trend-out never sees the held-out trend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.evaluate.base import Judgment
from freshrank.train.quality import build_queries, leave_one_trend_out, measure, ndcg_at_10, read_judgments


def test_fast_ndcg_matches_ranx(small_movies: list[Movie]) -> None:
    rng = np.random.default_rng(1)
    judgments = [
        Judgment("#christmas", "", 1, 1),
        Judgment("#christmas", "", 8, 3),
        Judgment("#christmas", "", 2, 2),
        Judgment("#christmas", "Family", 2, 1),
        Judgment("#christmas", "Family", 99, 1),
    ]
    queries = build_queries(small_movies, judgments)
    assert [q.query_id for q in queries] == ["#christmas|", "#christmas|Family"]
    assert len(queries[1].rows) == 4  # the Family movies only; unknown doc 99 is ignored
    for _ in range(5):
        scores = {q.query_id: rng.normal(size=len(q.rows)) for q in queries}
        report = measure(scores, queries, small_movies)
        for q in queries:
            assert (
                abs(report.per_query[q.query_id]["nDCG@10"] - ndcg_at_10(scores[q.query_id], q.grades)) < 1e-9
            )
    assert 0 < report.mean["nDCG@10"] <= 1 and report.per_query["#christmas|"]["R@100"] == 1.0


def test_leave_one_trend_out_uses_only_the_other_trends() -> None:
    table = {
        ("a", "t1"): 1.0,
        ("a", "t2"): 0.0,
        ("a", "t3"): 0.0,
        ("b", "t1"): 0.0,
        ("b", "t2"): 0.6,
        ("b", "t3"): 0.6,
    }
    chosen, cv = leave_one_trend_out(["a", "b"], lambda c, t: table[(c, t)], ["t1", "t2", "t3"])
    # On all three "b" wins (0.4 vs 0.33); each fold sees only the two other trends and chooses differently.
    assert chosen == {"t1": ("b", 0.0), "t2": ("a", 0.0), "t3": ("a", 0.0)}
    assert cv == 0.0


def test_read_judgments_skips_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    path.write_text("trend,genre,doc_id,grade\n#x,,1,1\n#x,,notanumber,1\n#y,Family,2,3\n#z,,3\n")
    assert read_judgments(path) == [Judgment("#x", "", 1, 1), Judgment("#y", "Family", 2, 3)]
