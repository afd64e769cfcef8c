"""Zero-shot ranking quality of a classifier on judgments: rank the catalogue (or a genre) by score per trend.

Used to choose templates, model types and signal weights by leave-one-trend-out cross-validation, and to
report nDCG@10 (gain 2^g - 1), P@10 and recall@100 per (trend, genre) query, computed by ranx.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.evaluate.base import Judgment, QueryId

MEASURES = ("nDCG@10", "P@10", "R@100")


@dataclass
class Query:
    """One judged (trend, genre) group and the catalogue rows it ranks."""

    trend: str
    genre: str
    rows: np.ndarray  # indices into the catalogue of the candidates (genre subset or all)
    grades: np.ndarray  # grade of each candidate (0 when unjudged)

    @property
    def query_id(self) -> str:
        return str(QueryId(self.trend, self.genre))


@dataclass
class QualityReport:
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        if not self.per_query:
            return {m: 0.0 for m in MEASURES}
        return {m: float(np.mean([q[m] for q in self.per_query.values()])) for m in MEASURES}


def read_judgments(path: Path) -> list[Judgment]:
    """``trend,genre,doc_id,grade`` CSV; malformed rows are skipped."""
    out: list[Judgment] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                out.append(
                    Judgment(row["trend"], row.get("genre") or "", int(row["doc_id"]), int(row["grade"]))
                )
            except (KeyError, TypeError, ValueError):
                continue
    return out


def build_queries(movies: Sequence[Movie], judgments: Iterable[Judgment]) -> list[Query]:
    index = {m.id: i for i, m in enumerate(movies)}
    groups: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for j in judgments:
        groups[(j.trend, j.genre)][j.doc_id] = j.grade
    queries = []
    for (trend, genre), qrels in sorted(groups.items()):
        rows = np.array([i for i, m in enumerate(movies) if not genre or genre in m.genres], dtype=np.int64)
        grades = np.zeros(len(rows), dtype=np.float64)
        position = {int(r): k for k, r in enumerate(rows)}
        for doc_id, grade in qrels.items():
            if doc_id in index and index[doc_id] in position:
                grades[position[index[doc_id]]] = grade
        queries.append(Query(trend, genre, rows, grades))
    return queries


def ndcg_at_10(scores: np.ndarray, grades: np.ndarray) -> float:
    """Fast nDCG@10 with exponential gain (ties: first index first); equals ir_measures on untied scores."""
    top = np.argsort(-scores, kind="stable")[:10]
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = float(((2.0 ** grades[top] - 1) * discounts[: len(top)]).sum())
    ideal = np.sort(grades)[::-1][:10]
    idcg = float(((2.0**ideal - 1) * discounts[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def measure(
    query_scores: Mapping[str, np.ndarray], queries: Sequence[Query], movies: Sequence[Movie]
) -> QualityReport:
    """nDCG@10 (gain 2^g - 1), P@10, R@100 per query by ranx; ``query_scores`` are over each query's rows."""
    from ranx import Qrels, Run, evaluate

    qrels = {
        q.query_id: {str(movies[int(r)].id): int(g) for r, g in zip(q.rows, q.grades, strict=True) if g > 0}
        for q in queries
    }
    run: dict[str, dict[str, float]] = {}
    for q in queries:
        top = np.argsort(-query_scores[q.query_id], kind="stable")[:1000]
        # Strictly decreasing run scores, so that ranx keeps our order (no tie-breaking of its own).
        run[q.query_id] = {str(movies[int(q.rows[i])].id): float(1000 - rank) for rank, i in enumerate(top)}
    judged = [q.query_id for q in queries if qrels[q.query_id]]
    report = QualityReport()
    for qid in (q.query_id for q in queries):
        report.per_query[qid] = {m: 0.0 for m in MEASURES}
    if judged:
        names = {"ndcg_burges@10": "nDCG@10", "precision@10": "P@10", "recall@100": "R@100"}
        scores = evaluate(
            Qrels({q: qrels[q] for q in judged}),
            Run({q: run[q] for q in judged}),
            list(names),
            return_mean=False,
        )
        for metric, values in scores.items():
            for qid, value in zip(judged, values, strict=True):
                report.per_query[qid][names[metric]] = float(value)
    return report


def evaluate_classifier(
    classifier: Classifier, movies: Sequence[Movie], judgments: Iterable[Judgment]
) -> QualityReport:
    """Fit on ``movies``, score every judged trend, rank each query's candidates by score."""
    queries = build_queries(movies, judgments)
    classifier.fit(movies)
    trends = sorted({q.trend for q in queries})
    matrix = classifier.score(trends) if trends else np.zeros((0, len(movies)))
    by_trend = dict(zip(trends, matrix, strict=True))
    return measure({q.query_id: by_trend[q.trend][q.rows] for q in queries}, queries, movies)


def leave_one_trend_out(
    candidates: Sequence[str],
    quality: Callable[[str, str], float],
    trends: Sequence[str],
) -> tuple[dict[str, tuple[str, float]], float]:
    """Per held-out trend: pick the candidate best on the other trends, and score it on the held-out one.

    ``quality(candidate, trend)`` is the nDCG@10 of a configuration on one trend. Returns the choice and the
    held-out figure per trend, and the mean held-out figure (the CV estimate of the selection procedure).
    """
    table = {(c, t): quality(c, t) for c in candidates for t in trends}
    chosen: dict[str, tuple[str, float]] = {}
    for held in trends:
        train = [t for t in trends if t != held]
        best = max(candidates, key=lambda c: (np.mean([table[(c, t)] for t in train]), -candidates.index(c)))
        chosen[held] = (best, table[(best, held)])
    return chosen, float(np.mean([v for _, v in chosen.values()]))
