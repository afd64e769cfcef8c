"""Configurations to evaluate: the lexical baseline, or search boosted by a named classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from freshrank.config import Settings
from freshrank.evaluate.base import Judgment
from freshrank.evaluate.metrics import MetricParams
from freshrank.evaluate.runner import (
    RETRIEVE_DEPTH,
    EvaluationReport,
    SystemResult,
    boosted_ranker,
    evaluate_judgments,
    evaluate_ranker,
    lexical_ranker,
)
from freshrank.loop.service import ScoringLoop
from freshrank.search.base import SearchBackend
from freshrank.search.service import SearchService
from freshrank.trends.base import Trend

BASELINE = "baseline"


@dataclass
class System:
    """One configuration: ``baseline`` (BM25 on the hashtag's words) or a classifier's trend boost.

    ``service`` ranks: the read-only search for the baseline, the scoring loop (which scores judged labels
    the model lacks, then ranks through the same read-only search) for a classifier.
    """

    spec: str
    service: SearchService | ScoringLoop
    classifier: str
    model_version: str

    @property
    def reader(self) -> SearchService:
        return self.service.reader if isinstance(self.service, ScoringLoop) else self.service

    @property
    def label(self) -> str:
        if self.spec == BASELINE:
            return BASELINE
        return f"{self.spec} ({self.model_version})" if self.model_version else self.spec


def classifier_loop(settings: Settings, backend: SearchBackend, name: str | None = None) -> ScoringLoop:
    """A scoring loop over ``backend`` whose boost comes from classifier ``name`` (default: settings')."""
    scoped = settings.model_copy(deep=True)
    if name:
        scoped.classifier.name = name
    return ScoringLoop(scoped, backend)


def open_system(settings: Settings, backend: SearchBackend, spec: str) -> System:
    """``baseline``, ``embedding``, ``champion`` or a registry version id; raises when it cannot load."""
    if spec == BASELINE:
        return System(spec, SearchService(settings, backend), "", "")
    loop = classifier_loop(settings, backend, spec)
    warnings: list[str] = []
    classifier = loop.classifier(warnings)
    if classifier is None:
        raise RuntimeError(f"classifier {spec!r} cannot be loaded: {'; '.join(warnings)}")
    return System(spec, loop, classifier.name, loop.version(warnings))


def evaluate_system(
    system: System,
    judgments: Sequence[Judgment],
    params: MetricParams,
    on_query: Callable[[str], None] | None = None,
) -> SystemResult:
    depth = max(RETRIEVE_DEPTH, params.recall_k)
    ranker = (
        lexical_ranker(system.service, depth)
        if system.spec == BASELINE
        else boosted_ranker(system.service, depth)
    )
    return evaluate_ranker(system.label, ranker, judgments, params, on_query)


def evaluate_with_baseline(
    system: System,
    judgments: Sequence[Judgment],
    params: MetricParams,
    min_judged: float,
    on_query: Callable[[str], None] | None = None,
    baseline: bool = True,
    crowd: Sequence[Trend] | None = None,
) -> EvaluationReport:
    """``freshrank evaluate``: the classifier's boost and the lexical baseline on the same judgments."""
    return evaluate_judgments(
        system.service,
        judgments,
        classifier=system.classifier,
        model_version=system.model_version,
        catalog_size=system.service.backend.count(),
        params=params,
        baseline=baseline,
        min_judged=min_judged,
        on_query=on_query,
        crowd=crowd,
    )
