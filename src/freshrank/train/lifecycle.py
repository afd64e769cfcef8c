"""Model lifecycle: evaluate a model, register it, gate it against the champion, promote, roll back.

The gate: a candidate becomes champion only if its mean zero-shot nDCG@10 over the configured judgments is
higher than the champion's, and its NLI dev accuracy is at most ``max_accuracy_drop`` below the champion's
(skipped when the champion has none, as the embedding baseline). Promotion and rollback re-score the
current trends with the new champion (scores are cached per model version, so old ones stay valid).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.classify.registry import (
    EMBEDDING,
    LifecycleError,
    ModelMetrics,
    RegistryCard,
    RegistryError,
)
from freshrank.config import Settings
from freshrank.evaluate.base import Judgment
from freshrank.train.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["LifecycleError", "PromotionResult", "promote", "retrain_and_promote", "rollback"]

NDCG_K = 10


# Judgments and zero-shot evaluation ----------------------------------------------------------------


def judgment_paths(settings: Settings) -> list[Path]:
    paths = [Path(p) for p in settings.lifecycle.judgments]
    return [p if p.is_absolute() else settings.judgments_dir / p for p in paths]


def load_judgments(settings: Settings) -> list[Judgment]:
    """The gate's judgments: the CSV files named in ``lifecycle.judgments`` (``trend,genre,doc_id,grade``)."""
    judgments: list[Judgment] = []
    for path in judgment_paths(settings):
        if not path.is_file():
            raise LifecycleError(f"judgments file not found: {path} (set FRESHRANK_LIFECYCLE__JUDGMENTS)")
        with path.open(encoding="utf-8", newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    judgments.append(
                        Judgment(row["trend"], row.get("genre") or "", int(row["doc_id"]), int(row["grade"]))
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("%s line %d skipped: %s", path.name, line, exc)
    if not judgments:
        raise LifecycleError(f"no judgments in {', '.join(map(str, judgment_paths(settings)))}")
    return judgments


# Bumped when the gate's ranking changes, so cards measured the old way are measured again.
GATE_RANKING = "search: calibrated boost, ties by id; crowd: strength-weighted labels"


def judgments_hash(judgments: Sequence[Judgment], crowd: str = "") -> str:
    """What a gate figure was measured on: the ranking, the crowd (``lifecycle.crowd``) and the judgments."""
    digest = hashlib.sha256(f"{GATE_RANKING}\n{crowd}\n".encode())
    for j in sorted(judgments, key=lambda j: (j.trend, j.genre, j.doc_id)):
        digest.update(f"{j.trend}\t{j.genre}\t{j.doc_id}\t{j.grade}\n".encode())
    return digest.hexdigest()[:12]


def load_movies(settings: Settings) -> list[Movie]:
    from freshrank.catalog.loader import load_catalog

    return load_catalog(settings.movies_path).movies


def zero_shot_ndcg(
    classifier: Classifier, movies: Sequence[Movie], judgments: Sequence[Judgment], settings: Settings
) -> tuple[dict[str, float], dict[str, float] | None]:
    """nDCG@10 per judged query, ranked exactly as ``freshrank evaluate`` ranks: through the search service;
    isolated, and in the crowd of ``lifecycle.crowd`` (None when it is "").

    The catalogue goes into a scratch in-memory index, the scoring loop stores the judged labels' calibrated
    scores there, and each (trend, genre) is the search with no text and only that trend boosting
    (isolated), or with that trend injected into the crowd's trends (``evaluate --crowd``).
    """
    from freshrank.evaluate.crowd import open_crowd
    from freshrank.evaluate.metrics import MetricParams
    from freshrank.evaluate.runner import evaluate_judgments
    from freshrank.loop.service import ScoringLoop
    from freshrank.search import open_backend

    backend = open_backend("sqlite:///:memory:", field_weights=settings.search.field_weights)
    try:
        backend.index(movies)
        loop = ScoringLoop(
            settings, backend, trend_store=_no_trend_store, classifier=lambda: classifier, keep_state=False
        )
        report = evaluate_judgments(
            loop,
            judgments,
            params=MetricParams(k=NDCG_K),
            baseline=False,
            min_judged=0.0,
            crowd=open_crowd(settings, settings.lifecycle.crowd),
        )
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    key = f"ndcg@{NDCG_K}"
    isolated = {qid: figures[key] for qid, figures in report.system.per_query.items()}
    crowd = {qid: f[key] for qid, f in report.crowd.per_query.items()} if report.crowd else None
    return isolated, crowd


def _no_trend_store() -> Any:
    raise LifecycleError("the gate ranks judged trends only")


def measure(
    classifier: Classifier,
    settings: Settings,
    *,
    dev_accuracy: float | None = None,
    movies: Sequence[Movie] | None = None,
    judgments: Sequence[Judgment] | None = None,
) -> ModelMetrics:
    """The classifier's zero-shot nDCG@10 on the gate's judgments, ranked as search serves it: in the crowd
    of ``lifecycle.crowd`` (what the gate compares), the isolated figure kept in ``extra``."""
    movies = list(movies) if movies is not None else load_movies(settings)
    judgments = list(judgments) if judgments is not None else load_judgments(settings)
    isolated, crowd = zero_shot_ndcg(classifier, movies, judgments, settings)
    per_query = crowd if crowd is not None else isolated
    extra = {"isolated_ndcg_at_10": float(np.mean(list(isolated.values())))} if crowd and isolated else {}
    return ModelMetrics(
        ndcg_at_10=float(np.mean(list(per_query.values()))) if per_query else None,
        dev_accuracy=dev_accuracy,
        per_query=per_query,
        judgments_hash=judgments_hash(judgments, settings.lifecycle.crowd),
        extra=extra,
    )


def model_dev_accuracy(model_dir: Path, settings: Settings) -> float:
    """Accuracy on the fixed NLI dev pairs: from the training run's metrics.json, else measured now."""
    import json

    metrics_file = model_dir / "metrics.json"
    if metrics_file.is_file():
        value = json.loads(metrics_file.read_text(encoding="utf-8")).get("dev_accuracy")
        if isinstance(value, int | float):
            return float(value)
    from freshrank.train.export import dev_accuracy

    return float(dev_accuracy(model_dir, settings.nli_path, settings=settings))


def evaluate_model_dir(model_dir: Path, settings: Settings) -> ModelMetrics:
    """Dev accuracy plus zero-shot nDCG@10 of a trained (not yet registered) model directory."""
    from freshrank.classify.models import load_model_dir

    accuracy = model_dev_accuracy(model_dir, settings)
    return measure(load_model_dir(model_dir, settings), settings, dev_accuracy=accuracy)


# Gate ----------------------------------------------------------------------------------------------


@dataclass
class GateDecision:
    candidate: str
    champion: str
    passed: bool
    reasons: list[str]
    candidate_metrics: ModelMetrics
    champion_metrics: ModelMetrics


def gate(
    candidate: str,
    candidate_metrics: ModelMetrics,
    champion: str,
    champion_metrics: ModelMetrics,
    max_accuracy_drop: float,
) -> GateDecision:
    """Pass only on higher mean nDCG@10 and dev accuracy no more than ``max_accuracy_drop`` lower."""
    reasons: list[str] = []
    passed = True
    new, old = candidate_metrics.ndcg_at_10, champion_metrics.ndcg_at_10
    if new is None or old is None:
        passed = False
        reasons.append("nDCG@10 missing for " + ("the candidate" if new is None else "the champion"))
    elif candidate_metrics.judgments_hash != champion_metrics.judgments_hash:
        passed = False
        reasons.append("candidate and champion were measured on different judgments")
    elif new > old:
        reasons.append(f"nDCG@10 {new:.4f} > champion's {old:.4f}")
    else:
        passed = False
        reasons.append(f"nDCG@10 {new:.4f} does not beat the champion's {old:.4f}")
    acc_new, acc_old = candidate_metrics.dev_accuracy, champion_metrics.dev_accuracy
    if acc_old is None:
        reasons.append("champion has no NLI dev accuracy: accuracy rule skipped")
    elif acc_new is None:
        passed = False
        reasons.append("candidate has no NLI dev accuracy")
    elif acc_new < acc_old - max_accuracy_drop - 1e-12:
        passed = False
        reasons.append(f"dev accuracy {acc_new:.4f} is more than {max_accuracy_drop:.2%} below {acc_old:.4f}")
    else:
        reasons.append(f"dev accuracy {acc_new:.4f} within {max_accuracy_drop:.2%} of {acc_old:.4f}")
    return GateDecision(candidate, champion, passed, reasons, candidate_metrics, champion_metrics)


def baseline_card(settings: Settings, registry: Registry) -> RegistryCard:
    """The embedding classifier's card: the implicit initial champion, measured once per judgments."""
    from freshrank.classify.embedding import EmbeddingClassifier
    from freshrank.classify.registry import now_iso

    judgments = load_judgments(settings)
    if registry.has_card(EMBEDDING):
        card = registry.card(EMBEDDING)
        if card.metrics.judgments_hash == judgments_hash(judgments, settings.lifecycle.crowd):
            return card
    classifier = EmbeddingClassifier(cache_dir=settings.cache_dir)
    card = RegistryCard(
        version=EMBEDDING,
        model_type=EMBEDDING,
        base_model=settings.classifier.base_model or "all-MiniLM-L6-v2",
        data="",
        data_hash="",
        params={"template": classifier.template},
        metrics=measure(classifier, settings, judgments=judgments),
        created=now_iso(),
        parent="",
        notes="Cosine similarity of the untrained base encoder: the implicit initial champion.",
    )
    registry.write_card(card)
    return card


def current_metrics(settings: Settings, registry: Registry, version: str) -> ModelMetrics:
    """A version's metrics on the current judgments (re-measured and saved when the judgments changed)."""
    if version == EMBEDDING:
        return baseline_card(settings, registry).metrics
    card = registry.card(version)
    judgments = load_judgments(settings)
    if card.metrics.judgments_hash != judgments_hash(judgments, settings.lifecycle.crowd):
        log.info("judgments changed since %s was measured: measuring again", version)
        metrics = measure(registry.load(version, settings), settings, judgments=judgments)
        metrics.dev_accuracy = card.metrics.dev_accuracy
        card.metrics = metrics
        registry.write_card(card)
    return card.metrics


# Promotion -----------------------------------------------------------------------------------------


@dataclass
class PromotionResult:
    """What a promotion attempt did; ``promoted`` False leaves the champion unchanged."""

    candidate: str
    champion_before: str
    champion_after: str
    promoted: bool
    forced: bool = False
    reasons: list[str] = field(default_factory=list)
    candidate_metrics: ModelMetrics | None = None
    champion_metrics: ModelMetrics | None = None
    rescored: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_settings(settings: Settings) -> Settings:
    """The same settings with the classifier pointed at the registry's champion."""
    classifier = settings.classifier.model_copy(update={"name": "champion"})
    return settings.model_copy(update={"classifier": classifier})


def rescore_trends(settings: Settings) -> dict[str, Any]:
    """Score the current trends with the (new) champion; failures are reported, never fatal to promotion."""
    from freshrank.loop.service import ScoringLoop

    try:
        report = ScoringLoop.from_settings(champion_settings(settings)).refresh()
    except Exception as exc:  # the champion is switched either way; the next refresh retries
        log.warning("re-scoring the current trends failed: %s", exc)
        return {"ok": False, "error": str(exc)}
    return {"ok": not report.failed, **report.to_dict()}


def promote(
    settings: Settings, version: str, *, force: bool = False, rescore: bool = True
) -> PromotionResult:
    """Gate ``version`` against the champion and promote it when it passes (or when ``force``)."""
    registry = Registry.from_settings(settings)
    version = registry.resolve(version)
    champion = registry.champion()
    if version == champion:
        return PromotionResult(version, champion, champion, False, reasons=[f"{version} is already champion"])
    candidate_metrics = current_metrics(settings, registry, version)
    champion_metrics = current_metrics(settings, registry, champion)
    decision = gate(
        version, candidate_metrics, champion, champion_metrics, settings.lifecycle.max_accuracy_drop
    )
    result = PromotionResult(
        version, champion, champion, False, force, list(decision.reasons), candidate_metrics, champion_metrics
    )
    if not (decision.passed or force):
        return result
    reason = "forced promotion" if force and not decision.passed else "passed the gate"
    registry.set_champion(version, f"{reason}: " + "; ".join(decision.reasons))
    result.promoted, result.champion_after = True, version
    if rescore:
        result.rescored = rescore_trends(settings)
    return result


def rollback(settings: Settings, *, rescore: bool = True) -> PromotionResult:
    """Make the previous champion current again (one command, no gate)."""
    registry = Registry.from_settings(settings)
    before = registry.champion()
    entry = registry.rollback()
    result = PromotionResult(entry.version, before, entry.version, True, reasons=[entry.reason])
    if rescore:
        result.rescored = rescore_trends(settings)
    return result


# Training ------------------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def register_trained(
    settings: Settings,
    model_dir: Path,
    metrics: ModelMetrics,
    *,
    params: dict[str, Any],
    data: Path | None = None,
) -> RegistryCard:
    """Register a trained model directory with a card built from its own description and ``params``.

    The parameters the model records about its own training win over ``params`` (e.g. params.yaml),
    so a card never claims a recipe the weights were not trained with.
    """
    description = _model_description(model_dir)
    params = {**params, **(description.get("params") or {})}
    data_path = data or Path(str(description.get("data", settings.nli_path)))
    return Registry.from_settings(settings).register(
        model_dir,
        model_type=str(description.get("model_type", description.get("type", "unknown"))),
        base_model=str(description.get("base_model", params.get("base_model", ""))),
        data=str(data_path),
        data_hash=file_sha256(data_path) if data_path.is_file() else "",
        params=params,
        metrics=metrics,
    )


def _model_description(model_dir: Path) -> dict[str, Any]:
    import json

    path = model_dir / "freshrank-model.json"
    if not path.is_file():
        raise LifecycleError(f"{model_dir} is not a freshrank model directory (no freshrank-model.json)")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def register_and_gate(
    settings: Settings,
    model_dir: Path,
    *,
    params: dict[str, Any],
    data: Path | None = None,
    metrics: ModelMetrics | None = None,
    promote_if_better: bool = True,
) -> tuple[RegistryCard, PromotionResult | None]:
    """Evaluate (unless ``metrics`` are given), register, and promote when the gate passes."""
    metrics = metrics or evaluate_model_dir(model_dir, settings)
    card = register_trained(settings, model_dir, metrics, params=params, data=data)
    if not promote_if_better:
        return card, None
    try:
        return card, promote(settings, card.version)
    except RegistryError as exc:
        raise LifecycleError(str(exc)) from exc


# Parameters, data preparation, training ------------------------------------------------------------


def read_params(path: Path | None) -> dict[str, Any]:
    """The parameters file (``params.yaml``, the one DVC tracks); empty when it does not exist."""
    import yaml

    if path is None or not Path(path).is_file():
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise LifecycleError(f"{path}: expected a mapping of sections (prepare, train, evaluate, export)")
    return data


def settings_for_params(settings: Settings, params: dict[str, Any]) -> Settings:
    """Settings with ``data.dir`` and ``evaluate.judgments`` of the parameters file applied."""
    update: dict[str, Any] = {}
    data_dir = params.get("data", {}).get("dir")
    if data_dir:
        update["data_dir"] = Path(data_dir)
    judgments = params.get("evaluate", {}).get("judgments")
    if judgments:
        update["lifecycle"] = settings.lifecycle.model_copy(update={"judgments": list(judgments)})
    return settings.model_copy(update=update) if update else settings


SAMPLING_KEYS = ("max_pairs", "catalog_pairs", "template", "seed")  # shared by prepare and train


def train_params(params: dict[str, Any], *, prepared: bool = False, **overrides: Any) -> Any:
    """``TrainParams`` from the parameters file's ``prepare`` and ``train`` sections plus overrides.

    ``prepared``: the pairs come from the prepare stage, already sampled, so nothing is sampled again.
    """
    from freshrank.train.trainer import TrainParams

    prepare = params.get("prepare", {})
    values = {key: prepare[key] for key in SAMPLING_KEYS if key in prepare}
    if prepared:
        values |= {"max_pairs": None, "catalog_pairs": 0}
    values |= params.get("train", {})
    values |= {k: v for k, v in overrides.items() if v is not None}
    try:
        return TrainParams(**values)
    except ValueError as exc:
        raise LifecycleError(f"bad training parameters: {exc}") from exc


@dataclass
class PreparedData:
    path: str
    train_pairs: int
    catalog_pairs: int
    dev_pairs: int
    skipped: dict[str, int]


def prepare_data(settings: Settings, out: Path, prepare: dict[str, Any]) -> PreparedData:
    """One JSONL of NLI pairs for training: sampled train pairs, in-domain catalogue pairs, the dev pairs."""
    import gzip
    import json

    from freshrank.classify.card import LABELS
    from freshrank.train.data import LoadReport, catalog_pairs, load_pairs

    seed = int(prepare.get("seed", 0))
    report = LoadReport()
    max_pairs = prepare.get("max_pairs")
    sources = prepare.get("sources") or [str(settings.nli_path)]
    train = load_pairs(sources, split="train", max_pairs=max_pairs, seed=seed, report=report)
    skipped = dict(report.skipped)
    extra = []
    if int(prepare.get("catalog_pairs", 0)):
        template = str(prepare.get("template", "This movie is about {label}."))
        extra = catalog_pairs(
            load_movies(settings), template, max_pairs=int(prepare["catalog_pairs"]), seed=seed
        )
    dev = load_pairs(sources, split="dev", max_pairs=prepare.get("dev_pairs"), seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if out.suffix == ".gz" else open
    with opener(out, "wt", encoding="utf-8") as fh:
        for pair in [*train, *extra, *dev]:
            label = LABELS[pair.label] if pair.label < len(LABELS) else "not_entailment"
            row = {
                "premise": pair.premise,
                "hypothesis": pair.hypothesis,
                "label": label,
                "split": pair.split,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return PreparedData(str(out), len(train), len(extra), len(dev), skipped)


def staging_dir(settings: Settings) -> Path:
    from datetime import datetime

    return settings.state_dir / "staging" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")


@dataclass
class TrainOutcome:
    """``freshrank train``: where the model went, its metrics, its card and any promotion."""

    model_dir: str
    train: dict[str, Any]
    metrics: ModelMetrics | None = None
    card: dict[str, Any] | None = None
    promotion: PromotionResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_and_register(
    settings: Settings,
    params: Any,
    *,
    out_dir: Path | None = None,
    register: bool = True,
    promote_if_better: bool = False,
) -> TrainOutcome:
    """Train into ``out_dir`` (default: a staging dir), evaluate, register, and gate/promote when asked."""
    import shutil

    from freshrank.train.trainer import train

    out_dir = out_dir or staging_dir(settings)
    result = train(params, out_dir, settings)
    outcome = TrainOutcome(str(out_dir), result.model_dump(mode="json"))
    if not register:
        return outcome
    outcome.metrics = evaluate_model_dir(out_dir, settings)
    data = (
        Path(params.data[0]) if params.data and not params.data[0].startswith("hub:") else settings.nli_path
    )
    card, promotion = register_and_gate(
        settings,
        out_dir,
        params=params.model_dump(mode="json"),
        data=data,
        metrics=outcome.metrics,
        promote_if_better=promote_if_better,
    )
    outcome.card, outcome.promotion = card.to_dict(), promotion
    outcome.model_dir = str(Registry.from_settings(settings).model_dir(card.version))
    if out_dir.is_relative_to(settings.state_dir / "staging"):
        shutil.rmtree(out_dir, ignore_errors=True)
    return outcome


def retrain_and_promote(settings: Settings) -> PromotionResult:
    """Train with the parameters file's ``train`` section, register, and promote if it beats the champion.

    The monitor calls this when rankings go stale; the result says whether the champion changed and why.
    """
    params_file = settings.lifecycle.params_file
    params = read_params(params_file)  # only its train section: data and judgments come from the settings
    outcome = train_and_register(settings, train_params(params), promote_if_better=True)
    assert outcome.promotion is not None and outcome.card is not None
    return outcome.promotion
