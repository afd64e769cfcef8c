"""Rank the catalogue per judged (trend, genre) group exactly as search does, and score the rankings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from freshrank.evaluate.base import EvaluationRun, Judgment, QueryId
from freshrank.evaluate.metrics import MetricParams, mean_metrics, query_metrics
from freshrank.evaluate.store import iter_groups
from freshrank.labels import hashtag_to_label
from freshrank.search.base import SearchPage
from freshrank.trends.base import Trend

log = logging.getLogger(__name__)

DEFAULT_MIN_JUDGED = 0.5  # warn when less than half of a top 10 is judged: the metrics then mostly count 0s
RETRIEVE_DEPTH = 100


class RankingService(Protocol):
    """What evaluation needs from ``freshrank.search.service.SearchService``."""

    def search(
        self,
        *,
        text: str,
        genre: str | None,
        hashtags: list[str] | None,
        limit: int,
        crowd: Sequence[Trend] | None = None,
    ) -> SearchPage: ...


Ranker = Callable[[str, str], list[int]]  # (trend, genre) -> ranked doc ids


@dataclass
class SystemResult:
    """Per-query metrics and rankings of one system (a classifier's boost, or the lexical baseline)."""

    name: str
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    rankings: dict[str, list[int]] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        return mean_metrics(self.per_query)


@dataclass
class EvaluationReport:
    system: SystemResult
    baseline: SystemResult | None
    classifier: str
    model_version: str
    catalog_size: int
    params: MetricParams
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None
    crowd: SystemResult | None = None  # the same judgments ranked in the crowd of a replayed stream's trends
    crowd_trends: list[str] = field(default_factory=list)  # that crowd's hashtags, best first

    @property
    def trends(self) -> list[str]:
        return sorted({QueryId.parse(qid).trend for qid in self.system.per_query})

    def to_json(self) -> dict[str, Any]:
        """The ``freshrank evaluate --json`` document (issue 2 item 9, plus extra keys)."""
        doc: dict[str, Any] = {
            "mean": self.system.mean,
            "baseline": {"mean": self.baseline.mean, "per_query": self.baseline.per_query}
            if self.baseline
            else None,
            "per_query": self.system.per_query,
            "classifier": self.classifier,
            "model_version": self.model_version,
            "catalog_size": self.catalog_size,
            "queries": len(self.system.per_query),
            "params": asdict(self.params),
            "warnings": self.warnings,
            "run_id": self.run_id,
            "crowd": self._crowd_json(),
        }
        if self.baseline:
            from freshrank.evaluate.compare import compare_systems

            comparison = compare_systems(self.baseline, self.system, metric=f"ndcg@{self.params.k}")
            doc["lift"] = {
                name: self.system.mean[name] - self.baseline.mean[name] for name in self.system.mean
            }
            doc["significance"] = comparison.significance.to_json()
        return doc

    def _crowd_json(self) -> dict[str, Any] | None:
        if self.crowd is None:
            return None
        key = f"ndcg@{self.params.k}"
        isolated, crowd = self.system.mean.get(key, 0.0), self.crowd.mean.get(key, 0.0)
        return {
            "mean": self.crowd.mean,
            "per_query": self.crowd.per_query,
            "trends": self.crowd_trends,
            "isolated_mean": self.system.mean,
            f"{key}_ratio": crowd / isolated if isolated else None,
        }

    def to_run(self) -> EvaluationRun:
        return EvaluationRun(
            kind="evaluate",
            classifier=self.classifier,
            model_version=self.model_version,
            catalog_size=self.catalog_size,
            params=asdict(self.params),
            trends=self.trends,
            mean=self.system.mean,
            baseline_mean=self.baseline.mean if self.baseline else {},
            per_query=self.system.per_query,
            details={
                "baseline_per_query": self.baseline.per_query if self.baseline else {},
                "warnings": self.warnings,
                **(
                    {
                        "crowd_mean": self.crowd.mean,
                        "crowd_per_query": self.crowd.per_query,
                        "crowd_trends": self.crowd_trends,
                    }
                    if self.crowd
                    else {}
                ),
            },
        )


def hashtag_words(trend: str) -> str:
    """The words of a hashtag (``#SharkWeek`` → ``shark week``), exactly as the trend stage labels it."""
    return hashtag_to_label(trend)


def boosted_ranker(service: RankingService, depth: int = RETRIEVE_DEPTH) -> Ranker:
    """No text, only ``trend`` trending: the (genre-filtered) catalogue ranked by the classifier's score."""

    def rank(trend: str, genre: str) -> list[int]:
        page = service.search(text="", genre=genre or None, hashtags=[trend], limit=depth)
        return [hit.id for hit in page.hits]

    return rank


def in_crowd(crowd: Sequence[Trend], trend: str) -> list[Trend]:
    """The trending set with ``trend`` as the stream's burst, the other trends kept as they are.

    The judged trend takes the strongest crowd trend's score and place (the burst the stream was replayed
    for, as #christmas in the demo): crowd trends that strong, and one with the same label, make way for
    it. Two equally strong bursts at once share the boost half and half (measured in docs/evaluation.md).
    """
    label = hashtag_words(trend)
    strength = max((t.score for t in crowd), default=1.0)
    injected = Trend(hashtag=trend, label=label, score=strength, count=0, baseline=0.0)
    return [injected, *(t for t in crowd if t.label != label and t.score < strength)]


def crowd_ranker(service: RankingService, crowd: Sequence[Trend], depth: int = RETRIEVE_DEPTH) -> Ranker:
    """No text, ``trend`` trending among ``crowd``: every label boosts, weighted by its trend's strength."""

    def rank(trend: str, genre: str) -> list[int]:
        trending = in_crowd(crowd, trend)
        page = service.search(text="", genre=genre or None, hashtags=None, limit=depth, crowd=trending)
        return [hit.id for hit in page.hits]

    return rank


def lexical_ranker(service: RankingService, depth: int = RETRIEVE_DEPTH) -> Ranker:
    """The baseline: BM25 on the hashtag's words, no classifier boost."""

    def rank(trend: str, genre: str) -> list[int]:
        page = service.search(text=hashtag_words(trend), genre=genre or None, hashtags=[], limit=depth)
        return [hit.id for hit in page.hits]

    return rank


def evaluate_ranker(
    name: str,
    ranker: Ranker,
    judgments: Iterable[Judgment],
    params: MetricParams | None = None,
    on_query: Callable[[str], None] | None = None,
) -> SystemResult:
    """Metrics of ``ranker`` on every judged (trend, genre) group."""
    params = params or MetricParams()
    result = SystemResult(name)
    for query, qrels in iter_groups(judgments):
        qid = str(query)
        ranking = ranker(query.trend, query.genre)
        result.rankings[qid] = ranking
        result.per_query[qid] = query_metrics(ranking, qrels, params)
        if on_query:
            on_query(qid)
    return result


def judged_warnings(result: SystemResult, k: int, min_judged: float) -> list[str]:
    """One line per query whose top k is judged less than ``min_judged`` (its metrics are unreliable)."""
    lines = []
    for qid, figures in result.per_query.items():
        share = figures.get(f"judged@{k}", 1.0)
        if share < min_judged:
            lines.append(
                f"{result.name} {qid}: only {share:.0%} of the top {k} is judged (< {min_judged:.0%})"
            )
    return lines


def evaluate_judgments(
    service: RankingService,
    judgments: Sequence[Judgment],
    *,
    classifier: str = "",
    model_version: str = "",
    catalog_size: int = 0,
    params: MetricParams | None = None,
    baseline: bool = True,
    min_judged: float = DEFAULT_MIN_JUDGED,
    on_query: Callable[[str], None] | None = None,
    crowd: Sequence[Trend] | None = None,
) -> EvaluationReport:
    """nDCG@k, P@k, recall@100 (and more) of the trend-boosted ranking and of the lexical baseline; with
    ``crowd``, also of the ranking with each judged trend injected into that trending set."""
    params = params or MetricParams()
    if not judgments:
        raise ValueError("no judgments to evaluate")
    depth = max(RETRIEVE_DEPTH, params.recall_k)
    system = evaluate_ranker(
        classifier or "boosted", boosted_ranker(service, depth), judgments, params, on_query
    )
    base = (
        evaluate_ranker("baseline", lexical_ranker(service, depth), judgments, params, on_query)
        if baseline
        else None
    )
    report = EvaluationReport(system, base, classifier, model_version, catalog_size, params)
    report.warnings = judged_warnings(system, params.k, min_judged)
    if crowd is not None:
        name = f"{classifier or 'boosted'} in the crowd"
        report.crowd = evaluate_ranker(name, crowd_ranker(service, crowd, depth), judgments, params, on_query)
        report.crowd_trends = [t.hashtag for t in crowd]
    return report
