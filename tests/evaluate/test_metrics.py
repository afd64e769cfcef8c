"""Every metric against the reference libraries (ir_measures: pytrec_eval, gdeval; ranx) on generated data."""

from __future__ import annotations

import random

import ir_measures
import pytest
from ir_measures import AP, ERR, RR, P, R, nDCG

from freshrank.evaluate import metrics as m

Runs = dict[str, list[int]]
QrelsByQuery = dict[str, dict[int, int]]


def _generated(seed: int, queries: int = 25) -> tuple[QrelsByQuery, Runs]:
    """Random graded judgments (0..3, some relevant docs never retrieved) and rankings with unjudged docs."""
    rng = random.Random(seed)
    qrels: QrelsByQuery = {}
    runs: Runs = {}
    for q in range(queries):
        qid = str(q + 1)  # numeric: gdeval refuses other topic ids
        judged = rng.sample(range(300), rng.randint(5, 60))
        grades = {doc: rng.choices([0, 1, 2, 3], weights=[5, 3, 2, 1])[0] for doc in judged}
        grades[judged[0]] = rng.randint(1, 3)  # every query has something relevant (trec_eval skips others)
        qrels[qid] = grades
        runs[qid] = rng.sample(range(300), rng.randint(8, 150))
    return qrels, runs


def _ir_measures(
    measure: object, qrels: QrelsByQuery, runs: Runs, provider: str | None = None
) -> dict[str, float]:
    qrel_rows = [ir_measures.Qrel(q, str(d), g) for q, grades in qrels.items() for d, g in grades.items()]
    # Strictly decreasing scores encode our order (the references break ties differently).
    run_rows = [
        ir_measures.ScoredDoc(q, str(d), float(len(r) - i)) for q, r in runs.items() for i, d in enumerate(r)
    ]
    calc = ir_measures.providers.registry[provider] if provider else ir_measures
    return {row.query_id: row.value for row in calc.iter_calc([measure], qrel_rows, run_rows)}


def _assert_close(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert set(reference) <= set(ours)
    for qid, value in reference.items():
        assert ours[qid] == pytest.approx(value, abs=1e-4), qid


@pytest.fixture(scope="module")
def data() -> tuple[QrelsByQuery, Runs]:
    return _generated(seed=7)


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_ndcg_linear_matches_trec_eval(data: tuple[QrelsByQuery, Runs], k: int) -> None:
    qrels, runs = data
    ours = {q: m.ndcg_at_k(runs[q], qrels[q], k, "linear") for q in qrels}
    _assert_close(ours, _ir_measures(nDCG @ k, qrels, runs, "pytrec_eval"))


@pytest.mark.parametrize("k", [5, 10])
def test_ndcg_exponential_matches_gdeval(data: tuple[QrelsByQuery, Runs], k: int) -> None:
    qrels, runs = data
    ours = {q: m.ndcg_at_k(runs[q], qrels[q], k) for q in qrels}
    _assert_close(ours, _ir_measures(nDCG(dcg="exp-log2") @ k, qrels, runs, "gdeval"))


@pytest.mark.parametrize("k", [5, 10])
def test_err_matches_gdeval(data: tuple[QrelsByQuery, Runs], k: int) -> None:
    qrels, runs = data
    ours = {q: m.err_at_k(runs[q], qrels[q], k, max_grade=4) for q in qrels}  # gdeval's fixed maximum grade
    _assert_close(ours, _ir_measures(ERR @ k, qrels, runs, "gdeval"))


@pytest.mark.parametrize("threshold", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 10, 30])
def test_precision_matches_trec_eval(data: tuple[QrelsByQuery, Runs], k: int, threshold: int) -> None:
    qrels, runs = data
    ours = {q: m.precision_at_k(runs[q], qrels[q], k, threshold) for q in qrels}
    _assert_close(ours, _ir_measures(P(rel=threshold) @ k, qrels, runs, "pytrec_eval"))


@pytest.mark.parametrize("threshold", [1, 2])
@pytest.mark.parametrize("k", [10, 100])
def test_recall_matches_trec_eval(data: tuple[QrelsByQuery, Runs], k: int, threshold: int) -> None:
    qrels, runs = data
    ours = {q: m.recall_at_k(runs[q], qrels[q], k, threshold) for q in qrels}
    ref = _ir_measures(R(rel=threshold) @ k, qrels, runs, "pytrec_eval")
    ours = {q: v for q, v in ours.items() if any(g >= threshold for g in qrels[q].values())}
    _assert_close(ours, {q: v for q, v in ref.items() if q in ours})


@pytest.mark.parametrize("threshold", [1, 2])
def test_average_precision_and_rr_match_trec_eval(data: tuple[QrelsByQuery, Runs], threshold: int) -> None:
    qrels, runs = data
    has_relevant = [q for q in qrels if any(g >= threshold for g in qrels[q].values())]
    ap = {q: m.average_precision(runs[q], qrels[q], threshold) for q in has_relevant}
    rr = {q: m.reciprocal_rank(runs[q], qrels[q], threshold) for q in has_relevant}
    _assert_close(
        ap, {q: v for q, v in _ir_measures(AP(rel=threshold), qrels, runs, "pytrec_eval").items() if q in ap}
    )
    _assert_close(
        rr, {q: v for q, v in _ir_measures(RR(rel=threshold), qrels, runs, "pytrec_eval").items() if q in rr}
    )


def test_dcg_absolute_values() -> None:
    # ir_measures reports only normalised DCG; ranx (numba) takes minutes to compile on the CI box, so the
    # absolute scale is checked by hand: (2^3-1)/log2(2) + 0 + (2^1-1)/log2(4) = 7.5; linear: 3 + 1/2.
    assert m.dcg_at_k([10, 11, 12], {10: 3, 12: 1}, 10) == pytest.approx(7.5)
    assert m.dcg_at_k([10, 11, 12], {10: 3, 12: 1}, 10, "linear") == pytest.approx(3.5)
    assert m.dcg_at_k([10, 11, 12], {10: 3, 12: 1}, 2) == pytest.approx(7.0)


def test_judged_share_matches_ir_measures(data: tuple[QrelsByQuery, Runs]) -> None:
    qrels, runs = data
    ours = {q: m.judged_at_k(runs[q], qrels[q], 10) for q in qrels}
    _assert_close(ours, _ir_measures(ir_measures.Judged @ 10, qrels, runs, "judged"))


def test_ties_break_by_score_then_ascending_id() -> None:
    assert m.rank({5: 1.0, 3: 2.0, 9: 1.0, 1: 1.0, 7: 2.0}) == [3, 7, 1, 5, 9]


def test_edge_cases_are_declared() -> None:
    qrels = {1: 0, 2: 0}
    assert m.ndcg_at_k([1, 2], qrels, 10) == 0.0  # nothing relevant: 0, not NaN
    assert m.recall_at_k([1, 2], qrels, 10) == 0.0
    assert m.precision_at_k([3], {3: 2}, 10) == pytest.approx(0.1)  # divided by k, not by the 1 retrieved
    assert m.err_at_k([3], {3: 1}, 10) == 0.5  # binary scale: R = (2^1 - 1) / 2^1
    assert m.ndcg_at_k([4, 3], {3: 1, 4: -2}, 10) == pytest.approx(1 / 1.5849625)  # negative grade = no gain
    with pytest.raises(ValueError, match="cut-off"):
        m.ndcg_at_k([1], qrels, 0)
    with pytest.raises(ValueError, match="gain"):
        m.gain(1, "cubic")  # type: ignore[arg-type]


def test_query_metrics_keys_follow_params() -> None:
    figures = m.query_metrics([1, 2, 3], {2: 3}, m.MetricParams(k=5, recall_k=50))
    assert list(figures) == m.MetricParams(k=5, recall_k=50).names()
    assert figures["ndcg@5"] == pytest.approx(1 / 1.5849625)
    assert m.mean_metrics({"a": {"x": 1.0}, "b": {"x": 0.0}}) == {"x": 0.5}
