"""KServe model server ``zero-shot-classifier`` on the kserve SDK (V1 and V2 / Open Inference Protocol).

V1: ``POST /v1/models/zero-shot-classifier:predict`` with
``{"instances": [{"sequence": str, "labels": [str]}]}`` returns
``{"predictions": [{"sequence", "labels", "scores"}], "model_name", "model_version"}``: one prediction
per instance, labels sorted by score (highest first) as in the transformers zero-shot pipeline. Scores are
independent per label in [0, 1] (the pipeline's ``multi_label=True``), so they do not sum to one.

V2: ``POST /v2/models/zero-shot-classifier/infer`` with BYTES inputs ``sequence`` (shape [N]) and ``labels``
(shape [L], shared, or [N, L]); outputs ``labels`` (BYTES [N, L], sorted) and ``scores`` (FP32 [N, L]).

Catalogue scores: ``POST /v1/models/zero-shot-classifier-catalogue:predict`` with
``{"instances": [{"label": str}], "parameters": {"catalogue": fingerprint}}`` returns
``{"predictions": [{"label", "scores"}], "movie_ids", "catalogue", "model_version"}``: ``Classifier.score``
over the catalogue of the search index the settings name (what a local ``refresh`` stores: every signal
standardised over that catalogue), scores in ``movie_ids`` order. ``RemoteClassifier.score`` uses it, so
local and remote scoring store the same numbers under the same model version. The catalogue is fitted on
the first request, and read again when a client's fingerprint differs from the fitted one.

The model loads in the background: readiness (``/v1/models/zero-shot-classifier``, ``/v2/models/.../ready``)
is false, and inference answers 503, until it has loaded. ``/metrics`` serves Prometheus metrics. kserve
binds 0.0.0.0; this server binds the configured host (127.0.0.1 by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from prometheus_client import Counter, Gauge

from freshrank.catalog.models import Movie
from freshrank.classify.base import Classifier
from freshrank.classify.remote import CATALOGUE_SUFFIX, catalogue_fingerprint
from freshrank.config import LifecycleSettings, Settings
from freshrank.metrics import record_classification

log = logging.getLogger(__name__)

MODEL_NAME = "zero-shot-classifier"
CATALOGUE_MODEL = MODEL_NAME + CATALOGUE_SUFFIX

SERVED_MODEL = Gauge(
    "freshrank_served_model_info",
    "The model a KServe classifier server answers with (value 1).",
    ["model", "version"],
)
REJECTED_REQUESTS = Counter(
    "freshrank_classifier_rejected_requests_total",
    "Inference requests refused as invalid (4xx).",
    ["protocol"],
)


@dataclass(frozen=True)
class Limits:
    """Request limits; anything beyond them is a 400 with a message saying which limit."""

    max_instances: int
    max_labels: int
    max_sequence_chars: int
    max_label_chars: int

    @classmethod
    def from_settings(cls, lifecycle: LifecycleSettings) -> Limits:
        return cls(
            lifecycle.max_instances,
            lifecycle.max_labels,
            lifecycle.max_sequence_chars,
            lifecycle.max_label_chars,
        )


def _check_text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{what} is empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} has {len(value)} characters; the limit is {limit}")
    return value


def validate_labels(labels: Any, limits: Limits, where: str) -> list[str]:
    if isinstance(labels, str):  # the pipeline also takes one label as a plain string
        labels = [labels]
    if not isinstance(labels, list) or not labels:
        raise InvalidInput(f"{where}: 'labels' must be a non-empty list of strings")
    if len(labels) > limits.max_labels:
        raise InvalidInput(f"{where}: {len(labels)} labels; the limit is {limits.max_labels} per instance")
    return [
        _check_text(label, f"{where}: label {i}", limits.max_label_chars) for i, label in enumerate(labels)
    ]


def validate_v1(payload: Any, limits: Limits) -> list[tuple[str, list[str]]]:
    """(sequence, labels) per instance, or InvalidInput naming the first problem."""
    if isinstance(payload, bytes | str):  # a body sent without a JSON content type arrives undecoded
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"request body is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput(
            'expected a JSON object {"instances": [{"sequence": "...", "labels": ["..."]}, ...]}'
        )
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list")
    if len(instances) > limits.max_instances:
        raise InvalidInput(f"{len(instances)} instances; the limit is {limits.max_instances} per request")
    parsed = []
    for i, instance in enumerate(instances):
        where = f"instance {i}"
        if not isinstance(instance, dict):
            raise InvalidInput(f"{where}: expected an object with 'sequence' and 'labels'")
        for key in ("sequence", "labels"):
            if key not in instance:
                raise InvalidInput(f"{where}: missing field '{key}'")
        sequence = _check_text(instance["sequence"], f"{where}: 'sequence'", limits.max_sequence_chars)
        parsed.append((sequence, validate_labels(instance["labels"], limits, where)))
    return parsed


def _bytes_input(request: InferRequest, name: str) -> tuple[list[str], list[int]]:
    tensor = request.get_input_by_name(name)
    if tensor is None:
        raise InvalidInput(f"missing input '{name}' (BYTES)")
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input '{name}' must have datatype BYTES, got {tensor.datatype}")
    try:
        values = tensor.as_numpy().reshape(-1).tolist()
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"input '{name}': data does not match shape {tensor.shape}: {exc}") from exc
    texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    return texts, list(tensor.shape)


def validate_v2(request: InferRequest, limits: Limits) -> list[tuple[str, list[str]]]:
    sequences, _ = _bytes_input(request, "sequence")
    labels, shape = _bytes_input(request, "labels")
    if not sequences:
        raise InvalidInput("input 'sequence' is empty")
    if len(sequences) > limits.max_instances:
        raise InvalidInput(f"{len(sequences)} sequences; the limit is {limits.max_instances} per request")
    if len(shape) == 2 and shape[0] == len(sequences):
        rows = [labels[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
    elif len(shape) == 1:
        rows = [labels] * len(sequences)
    else:
        raise InvalidInput(f"input 'labels' must have shape [L] or [{len(sequences)}, L], got {shape}")
    return [
        (
            _check_text(seq, f"sequence {i}", limits.max_sequence_chars),
            validate_labels(row, limits, f"sequence {i}"),
        )
        for i, (seq, row) in enumerate(zip(sequences, rows, strict=True))
    ]


def validate_catalogue(payload: Any, limits: Limits) -> tuple[list[str], str]:
    """(labels, the client's catalogue fingerprint or "") of a catalogue request, or InvalidInput."""
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise InvalidInput('expected a JSON object {"instances": [{"label": "..."}, ...]}')
    instances = payload["instances"]
    if not instances or not all(isinstance(i, dict) and "label" in i for i in instances):
        raise InvalidInput("'instances' must be a non-empty list of objects with a 'label'")
    labels = validate_labels([i["label"] for i in instances], limits, "instances")
    parameters = payload.get("parameters") or {}
    wanted = parameters.get("catalogue", "") if isinstance(parameters, dict) else ""
    return labels, str(wanted)


def catalogue_movies(settings: Settings) -> list[Movie]:
    """The movies the scoring loop fits: the search index's (opened read-only), else the catalogue file."""
    from freshrank.catalog.loader import load_catalog
    from freshrank.search import open_settings_backend
    from freshrank.search.service import MovieSource

    movies: list[Movie] = []
    try:
        backend = open_settings_backend(settings, read_only=True)
        movies = list(backend.movies()) if isinstance(backend, MovieSource) else []
    except Exception as exc:  # no index yet, or a server that is down: the catalogue file, as the loop does
        log.warning("search index unreadable (%s): fitting the catalogue file", exc)
    return movies or load_catalog(settings.movies_path).movies


def classify(
    classifier: Classifier, instances: Sequence[tuple[str, list[str]]]
) -> list[tuple[list[str], list[float]]]:
    """Scores per instance, labels sorted by score; instances sharing a label set go in one call."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, (_, labels) in enumerate(instances):
        groups.setdefault(tuple(labels), []).append(i)
    results: list[tuple[list[str], list[float]]] = [([], [])] * len(instances)
    for label_set, members in groups.items():
        labels = list(label_set)
        scores = classifier.predict([instances[i][0] for i in members], labels)
        for row, i in zip(np.asarray(scores, dtype=np.float64), members, strict=True):
            order = sorted(range(len(labels)), key=lambda j: (-row[j], j))
            results[i] = ([labels[j] for j in order], [round(float(row[j]), 6) for j in order])
    return results


class ZeroShotModel(Model):
    """The freshrank classifier behind the KServe data plane."""

    def __init__(self, settings: Settings, model: str = "champion", name: str = MODEL_NAME) -> None:
        super().__init__(name)
        self.settings = settings
        self.model_ref = model
        self.limits = Limits.from_settings(settings.lifecycle)
        self.classifier: Classifier | None = None
        self.version = ""
        self.load_error = ""
        self._load_lock = threading.Lock()
        self._infer_lock = threading.Lock()

    def load(self) -> bool:
        """Load the named registry model (``champion`` by default); readiness turns true only after it."""
        with self._load_lock:
            if self.classifier is not None:
                return True
            from freshrank.classify.registry import RegistryReader

            started = time.perf_counter()
            try:
                classifier = RegistryReader.from_settings(self.settings).load(self.model_ref, self.settings)
            except Exception as exc:
                self.load_error = str(exc)
                log.error("loading model %r failed: %s", self.model_ref, exc)
                raise
            self.classifier, self.version = classifier, classifier.version
            SERVED_MODEL.labels(model=self.name, version=self.version).set(1)
            self.ready = True
            log.info(
                "model %s (%s) ready in %.1fs", self.version, self.model_ref, time.perf_counter() - started
            )
            return True

    def _run(self, instances: list[tuple[str, list[str]]]) -> list[tuple[list[str], list[float]]]:
        assert self.classifier is not None
        started = time.perf_counter()
        with self._infer_lock:  # one batch at a time: the model already uses every core
            results = classify(self.classifier, instances)
        pairs = sum(len(labels) for _, labels in instances)
        record_classification(f"kserve:{self.version}", pairs, time.perf_counter() - started)
        return results

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        protocol = "v2" if isinstance(payload, InferRequest) else "v1"
        try:
            instances = (
                validate_v2(payload, self.limits)
                if isinstance(payload, InferRequest)
                else validate_v1(payload, self.limits)
            )
        except InvalidInput:
            REJECTED_REQUESTS.labels(protocol=protocol).inc()
            raise
        results = await asyncio.get_running_loop().run_in_executor(None, self._run, instances)
        if isinstance(payload, InferRequest):
            return self._v2_response(payload, results)
        return {
            "predictions": [
                {"sequence": seq, "labels": labels, "scores": scores}
                for (seq, _), (labels, scores) in zip(instances, results, strict=True)
            ],
            "model_name": self.name,
            "model_version": self.version,
        }

    def _v2_response(
        self, request: InferRequest, results: list[tuple[list[str], list[float]]]
    ) -> InferResponse:
        width = max(len(labels) for labels, _ in results)
        if any(len(labels) != width for labels, _ in results):
            raise InvalidInput("V2 requests need the same number of labels for every sequence")
        labels = [label for row, _ in results for label in row]
        scores = [score for _, row in results for score in row]
        shape = [len(results), width]
        outputs = [
            InferOutput(name="labels", shape=shape, datatype="BYTES", data=labels),
            InferOutput(name="scores", shape=shape, datatype="FP32", data=scores),
        ]
        return InferResponse(
            response_id=request.id or "",
            model_name=self.name,
            infer_outputs=outputs,
            model_version=self.version,
        )


class CatalogueModel(Model):
    """``Classifier.score`` over the search index's catalogue: the scores a local ``refresh`` stores.

    Its own classifier instance (fitting changes how ``predict`` standardises), loaded and fitted on the
    first request, so a server nobody asks for catalogue scores costs nothing more.
    """

    def __init__(self, settings: Settings, model: str = "champion", name: str = CATALOGUE_MODEL) -> None:
        super().__init__(name)
        self.settings = settings
        self.model_ref = model
        self.limits = Limits.from_settings(settings.lifecycle)
        self.classifier: Classifier | None = None
        self.fitted: tuple[str, list[int]] = ("", [])
        self._lock = threading.Lock()
        self.ready = True  # loads on first use; a load failure answers that request with an error

    def load(self) -> bool:
        return True

    def _classifier(self) -> Classifier:
        if self.classifier is None:
            from freshrank.classify.registry import RegistryReader

            self.classifier = RegistryReader.from_settings(self.settings).load(self.model_ref, self.settings)
        return self.classifier

    def _fit(self, classifier: Classifier, wanted: str) -> tuple[str, list[int]]:
        """Fit the catalogue once; read it again only when a client asks for another one."""
        if self.fitted[0] and (not wanted or wanted == self.fitted[0]):
            return self.fitted
        movies = catalogue_movies(self.settings)
        ids = [m.id for m in movies]
        fingerprint = catalogue_fingerprint(ids)
        if fingerprint != self.fitted[0]:
            classifier.fit(movies)
            self.fitted = (fingerprint, ids)
            log.info("catalogue of %d movies fitted (%s)", len(ids), fingerprint)
        return self.fitted

    def _run(self, labels: list[str], wanted: str) -> tuple[str, list[int], np.ndarray, str]:
        started = time.perf_counter()
        with self._lock:  # fitting and scoring share the classifier's state
            classifier = self._classifier()
            fingerprint, ids = self._fit(classifier, wanted)
            scores = np.asarray(classifier.score(labels), dtype=np.float32)
        record_classification(
            f"kserve:{classifier.version}", len(labels) * len(ids), time.perf_counter() - started
        )
        return fingerprint, ids, scores, classifier.version

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            labels, wanted = validate_catalogue(payload, self.limits)
        except InvalidInput:
            REJECTED_REQUESTS.labels(protocol="catalogue").inc()
            raise
        fingerprint, ids, scores, version = await asyncio.get_running_loop().run_in_executor(
            None, self._run, labels, wanted
        )
        return {
            "predictions": [
                {"label": label, "scores": row.tolist()} for label, row in zip(labels, scores, strict=True)
            ],
            "movie_ids": ids,
            "catalogue": fingerprint,
            "model_name": self.name,
            "model_version": version,
        }


def _load_in_background(model: ZeroShotModel) -> threading.Thread:
    def target() -> None:
        with contextlib.suppress(Exception):  # already logged; the server stays up and answers 503
            model.load()

    thread = threading.Thread(target=target, name="model-load", daemon=True)
    thread.start()
    return thread


def run(settings: Settings, host: str, port: int, model: str = "champion") -> None:
    """Serve ``model`` (a registry name) on ``host:port`` until interrupted; loading happens after binding."""
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app as kserve_app
    from kserve.protocol.rest.server import RESTServer

    from freshrank.serve.limits import RequestLimits

    kserve_app.add_middleware(RequestLimits, max_body_bytes=settings.serve.max_body_bytes)  # 413 first
    zero_shot = ZeroShotModel(settings, model)
    server = ModelServer(http_port=port, enable_grpc=False, workers=1, enable_docs_url=False)
    server.register_model(zero_shot)
    server.register_model(CatalogueModel(settings, model))
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        workers=1,
        grace_period=5,
    )
    rest.config.host = host  # kserve hard-codes 0.0.0.0
    log.info("KServe %s on http://%s:%d (model %s loading)", MODEL_NAME, host, port, model)
    _load_in_background(zero_shot)
    asyncio.run(rest.start())
