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
from freshrank.search.base import SearchBackend
from freshrank.search.refresh import scores_version
from freshrank.search.service import SearchService

BASELINE = "baseline"


@dataclass
class System:
    """One configuration: ``baseline`` (BM25 on the hashtag's words) or a classifier's trend boost."""

    spec: str
    service: SearchService
    classifier: str
    model_version: str

    @property
    def label(self) -> str:
        if self.spec == BASELINE:
            return BASELINE
        return f"{self.spec} ({self.model_version})" if self.model_version else self.spec


def classifier_service(settings: Settings, backend: SearchBackend, name: str | None = None) -> SearchService:
    """A search service over ``backend`` whose boost comes from classifier ``name`` (default: settings')."""
    scoped = settings.model_copy(deep=True)
    if name:
        scoped.classifier.name = name
    return SearchService(scoped, backend)


def open_system(settings: Settings, backend: SearchBackend, spec: str) -> System:
    """``baseline``, ``embedding``, ``champion`` or a registry version id; raises when it cannot load."""
    service = classifier_service(settings, backend, None if spec == BASELINE else spec)
    if spec == BASELINE:
        return System(spec, service, "", "")
    warnings: list[str] = []
    classifier = service.classifier(warnings)
    if classifier is None:
        raise RuntimeError(f"classifier {spec!r} cannot be loaded: {'; '.join(warnings)}")
    return System(spec, service, classifier.name, scores_version(classifier, service.calibration))


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
    )
