"""Ranking metrics with declared definitions (see docs/evaluation.md).

Conventions shared by every function:

* ``ranking`` is the ranked list of document ids, best first (use :func:`rank` to order scores: score
  descending, then id ascending, the same tie-break as search).
* ``qrels`` maps judged document ids to integer grades; unjudged documents have grade 0 and negative grades
  (TREC's "spam" -2) count as 0 gain.
* A document is *relevant* when its grade is ``>= threshold`` (default 1).
* Cut-off ``k`` counts ranks 1..k; P@k divides by ``k`` even when fewer documents were retrieved (TREC).
* Gain is exponential ``2^g - 1`` (default, Burges et al.) or linear ``g``; discount ``log2(rank + 1)``;
  the ideal DCG sorts **all** judged grades of the query (not only the retrieved ones).

Our own implementation (rather than calling ir_measures/ranx at run time) because the reference providers
split these across pytrec_eval (linear nDCG only), gdeval (a Perl subprocess: exponential nDCG, ERR) and
numba-compiled ranx, and none of them breaks score ties by ascending id as search does. The tests cross-check
every function against ``ir_measures`` and ``ranx`` on generated judgments and runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Gain = Literal["exponential", "linear"]
Qrels = Mapping[int, int]


def rank(scores: Mapping[int, float]) -> list[int]:
    """Document ids by score descending, ties broken by id ascending."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))]


def gain(grade: int, kind: Gain = "exponential") -> float:
    """``2^g - 1`` (exponential) or ``g`` (linear); negative grades give 0."""
    grade = max(grade, 0)
    if kind == "exponential":
        return float(2**grade - 1)
    if kind == "linear":
        return float(grade)
    raise ValueError(f"unknown gain {kind!r}: use 'exponential' or 'linear'")


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"cut-off k must be >= 1, got {k}")


def dcg_of_grades(grades: Sequence[int], k: int, kind: Gain = "exponential") -> float:
    """DCG@k = sum over ranks i=1..k of gain(g_i) / log2(i + 1)."""
    _check_k(k)
    return sum(gain(g, kind) / math.log2(i + 2) for i, g in enumerate(grades[:k]))


def dcg_at_k(ranking: Sequence[int], qrels: Qrels, k: int, kind: Gain = "exponential") -> float:
    return dcg_of_grades([qrels.get(doc, 0) for doc in ranking], k, kind)


def ndcg_at_k(ranking: Sequence[int], qrels: Qrels, k: int, kind: Gain = "exponential") -> float:
    """DCG@k / ideal DCG@k, the ideal ranking made of all judged grades; 0 when nothing is relevant."""
    ideal = dcg_of_grades(sorted(qrels.values(), reverse=True), k, kind)
    return dcg_at_k(ranking, qrels, k, kind) / ideal if ideal > 0 else 0.0


def _relevant(qrels: Qrels, threshold: int) -> set[int]:
    return {doc for doc, grade in qrels.items() if grade >= threshold}


def precision_at_k(ranking: Sequence[int], qrels: Qrels, k: int, threshold: int = 1) -> float:
    """Relevant documents in the top k, divided by k."""
    _check_k(k)
    relevant = _relevant(qrels, threshold)
    return sum(1 for doc in ranking[:k] if doc in relevant) / k


def recall_at_k(ranking: Sequence[int], qrels: Qrels, k: int, threshold: int = 1) -> float:
    """Relevant documents in the top k, divided by all relevant documents; 0 when there are none."""
    _check_k(k)
    relevant = _relevant(qrels, threshold)
    if not relevant:
        return 0.0
    return sum(1 for doc in ranking[:k] if doc in relevant) / len(relevant)


def average_precision(
    ranking: Sequence[int], qrels: Qrels, threshold: int = 1, k: int | None = None
) -> float:
    """Mean over all relevant documents of the precision at its rank (0 for those not retrieved)."""
    relevant = _relevant(qrels, threshold)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, doc in enumerate(ranking[:k] if k else ranking, start=1):
        if doc in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def reciprocal_rank(ranking: Sequence[int], qrels: Qrels, threshold: int = 1, k: int | None = None) -> float:
    """1 / rank of the first relevant document; 0 when none is retrieved."""
    relevant = _relevant(qrels, threshold)
    for i, doc in enumerate(ranking[:k] if k else ranking, start=1):
        if doc in relevant:
            return 1.0 / i
    return 0.0


def err_at_k(ranking: Sequence[int], qrels: Qrels, k: int, max_grade: int | None = None) -> float:
    """Expected reciprocal rank (Chapelle et al. 2009): sum_r 1/r * R_r * prod_{i<r} (1 - R_i).

    ``R = (2^g - 1) / 2^max_grade``; ``max_grade`` defaults to the highest grade judged for the query
    (at least 1), so on binary judgments a relevant document stops the user with probability 1/2. TREC's
    gdeval fixes ``max_grade=4``.
    """
    _check_k(k)
    top = max_grade if max_grade is not None else max([1, *qrels.values()])
    not_stopped, total = 1.0, 0.0
    for i, doc in enumerate(ranking[:k], start=1):
        stop = gain(qrels.get(doc, 0)) / 2**top
        total += not_stopped * stop / i
        not_stopped *= 1.0 - stop
    return total


def judged_at_k(ranking: Sequence[int], qrels: Qrels, k: int) -> float:
    """Share of the top k that has a judgment (any grade): low values make every other metric unreliable."""
    _check_k(k)
    top = ranking[:k]
    return sum(1 for doc in top if doc in qrels) / len(top) if top else 0.0


@dataclass(frozen=True)
class MetricParams:
    """Which cut-offs, gain and relevance threshold an evaluation uses (stored with every run)."""

    k: int = 10
    recall_k: int = 100
    gain: Gain = "exponential"
    threshold: int = 1
    err_max_grade: int | None = None

    def names(self) -> list[str]:
        k, r = self.k, self.recall_k
        return [
            f"ndcg@{k}",
            f"p@{k}",
            f"recall@{r}",
            f"dcg@{k}",
            f"ap@{r}",
            f"rr@{r}",
            f"err@{k}",
            f"judged@{k}",
        ]


def query_metrics(
    ranking: Sequence[int], qrels: Qrels, params: MetricParams | None = None
) -> dict[str, float]:
    """Every metric of one ranked list, keyed ``ndcg@10``, ``p@10``, ``recall@100``, … (see ``names``)."""
    p = params or MetricParams()
    k, r = p.k, p.recall_k
    return {
        f"ndcg@{k}": ndcg_at_k(ranking, qrels, k, p.gain),
        f"p@{k}": precision_at_k(ranking, qrels, k, p.threshold),
        f"recall@{r}": recall_at_k(ranking, qrels, r, p.threshold),
        f"dcg@{k}": dcg_at_k(ranking, qrels, k, p.gain),
        f"ap@{r}": average_precision(ranking, qrels, p.threshold, r),
        f"rr@{r}": reciprocal_rank(ranking, qrels, p.threshold, r),
        f"err@{k}": err_at_k(ranking, qrels, k, p.err_max_grade),
        f"judged@{k}": judged_at_k(ranking, qrels, k),
    }


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Arithmetic mean of each metric over queries (empty input gives an empty dict)."""
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    return {name: sum(q[name] for q in per_query.values()) / len(per_query) for name in names}
