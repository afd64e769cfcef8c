"""A Classifier over HTTP: scores come from a KServe ``zero-shot-classifier`` server (V1 protocol).

``score`` asks the server's catalogue model (``zero-shot-classifier-catalogue``) for ``Classifier.score``
over the catalogue both sides read from the search index, so remote scores equal local ones for the same
model version; ``predict`` scores free texts (the transformers zero-shot pipeline's contract).

Requests are batched (``batch_size`` sequences and at most ``max_labels`` labels per request), retried with
exponential backoff on refused connections and 5xx/503 (e.g. a server still loading its model), and fail with
:class:`ClassifierUnavailable` naming the URL when the server stays down. A 4xx is not retried: the server's
message is raised as :class:`RemoteClassifierError`.

A hung server (paused, not dead: it accepts connections and never answers) costs one timeout
(``classifier.timeout_seconds``, not retried), and a circuit breaker per server (pybreaker, shared by every
client of that URL in the process) then fails calls at once with :class:`CircuitOpen` for
``classifier.breaker_reset_seconds``, after which one trial call decides whether it closes again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pybreaker

from freshrank import breakers
from freshrank.catalog.models import Movie

if TYPE_CHECKING:
    from freshrank.config import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "zero-shot-classifier"
CATALOGUE_SUFFIX = "-catalogue"
# Labels per catalogue request: each answers len(catalogue) floats per label (about 0.2 MB for 12k movies).
CATALOGUE_LABELS = 8


class RemoteClassifierError(RuntimeError):
    """The server refused a request (4xx) or answered something that is not a V1 prediction."""


class ClassifierUnavailable(RemoteClassifierError):
    """The server could not be reached, or kept failing, after every retry."""


class CircuitOpen(ClassifierUnavailable):
    """The server failed a moment ago: the call was not tried."""


def breaker_for(url: str, reset_s: float) -> pybreaker.CircuitBreaker:
    """The process-wide breaker of one classifier server (scheme, host and port of ``url``)."""
    parts = httpx.URL(url)
    address = f"{parts.scheme}://{parts.host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    return breakers.breaker_for(address, reset_s, (ClassifierUnavailable,))  # a 4xx says it is alive


def predict_url(url: str, model_name: str = MODEL_NAME) -> str:
    """``http://host:port`` becomes ``http://host:port/v1/models/<model>:predict``; a full URL stays."""
    url = url.rstrip("/")
    return url if ":predict" in url.rsplit("/", 1)[-1] else f"{url}/v1/models/{model_name}:predict"


def catalogue_url(predict: str) -> str:
    """The catalogue model beside a predict URL: ``…/models/<model>:predict`` → ``…/<model>-catalogue``."""
    return predict.removesuffix(":predict") + CATALOGUE_SUFFIX + ":predict"


def catalogue_fingerprint(movie_ids: Sequence[int]) -> str:
    """Which catalogue was fitted: a hash of its movie ids (order left out: scores are mapped by id)."""
    digest = hashlib.sha256(",".join(map(str, sorted(movie_ids))).encode()).hexdigest()
    return f"{len(movie_ids)}-{digest[:16]}"


class RemoteClassifier:
    """The ``Classifier`` interface over a KServe V1 endpoint."""

    name = "remote"

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | None = None,
        batch_size: int | None = None,
        max_labels: int = 100,
        retries: int = 4,
        backoff_seconds: float = 0.5,
        timeout_seconds: float | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"classifier URL must start with http:// or https://, got {url!r}")
        self.url = predict_url(url)
        self.catalogue_url = catalogue_url(self.url)
        self.batch_size = batch_size or (settings.classifier.batch_size if settings else 64)
        self.max_labels = max_labels
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        limits = settings.classifier if settings else None
        read = timeout_seconds or (limits.score_timeout_seconds if limits else 120.0)
        connect = min(read, limits.connect_timeout_seconds if limits else 2.0)
        self.client = client or httpx.Client(timeout=httpx.Timeout(read, connect=connect))
        probe = min(read, limits.timeout_seconds if limits else 5.0)
        self.probe_timeout = httpx.Timeout(probe, connect=min(probe, connect))
        self._breaker = breaker_for(self.url, limits.breaker_reset_seconds if limits else 30.0)
        self._documents: list[str] = []
        self._ids: list[int] = []
        self._fingerprint = catalogue_fingerprint([])
        self._version = ""

    @property
    def version(self) -> str:
        """The served model's version (asked once from the server; scores are cached per version)."""
        if not self._version:
            probe = {"instances": [{"sequence": "version probe", "labels": ["version"]}]}
            self._post(self.url, probe, 1, self.probe_timeout)
        return self._version

    def fit(self, movies: Sequence[Movie]) -> RemoteClassifier:
        self._documents = [m.document for m in movies]
        self._ids = [m.id for m in movies]
        self._fingerprint = catalogue_fingerprint(self._ids)
        return self

    def score(self, labels: Sequence[str]) -> np.ndarray:
        """The server's ``Classifier.score`` over the same catalogue, columns mapped to this fit's order."""
        scores = np.zeros((len(labels), len(self._ids)), dtype=np.float32)
        if not len(labels) or not self._ids:
            return scores
        for lo in range(0, len(labels), CATALOGUE_LABELS):
            chunk = list(labels[lo : lo + CATALOGUE_LABELS])
            body = self._post(
                self.catalogue_url,
                {
                    "instances": [{"label": label} for label in chunk],
                    "parameters": {"catalogue": self._fingerprint},
                },
                len(chunk),
            )
            columns = self._columns(body)
            for row, prediction in enumerate(body["predictions"]):
                scores[lo + row] = np.asarray(prediction["scores"], dtype=np.float32)[columns]
        return scores

    def _columns(self, body: dict[str, Any]) -> np.ndarray:
        """Where each fitted movie sits in the server's answer; a different catalogue is an error."""
        if body.get("catalogue") != self._fingerprint:
            raise RemoteClassifierError(
                f"classifier at {self.catalogue_url} scores another catalogue ({body.get('catalogue')}) than "
                f"this one ({self._fingerprint}): both must read the same search index"
            )
        position = {int(movie_id): i for i, movie_id in enumerate(body["movie_ids"])}
        return np.array([position[movie_id] for movie_id in self._ids], dtype=np.int64)

    def predict(self, sequences: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        scores = np.zeros((len(sequences), len(labels)), dtype=np.float32)
        if not len(sequences) or not len(labels):
            return scores
        for lo in range(0, len(labels), self.max_labels):
            chunk = list(labels[lo : lo + self.max_labels])
            for start in range(0, len(sequences), self.batch_size):
                batch = sequences[start : start + self.batch_size]
                body = self._post(
                    self.url, {"instances": [{"sequence": s, "labels": chunk} for s in batch]}, len(batch)
                )
                predictions = body["predictions"]
                for row, prediction in enumerate(predictions):
                    by_label = dict(zip(prediction["labels"], prediction["scores"], strict=True))
                    scores[start + row, lo : lo + len(chunk)] = [by_label[label] for label in chunk]
        return scores

    def _post(
        self, url: str, request: dict[str, Any], expected: int, timeout: httpx.Timeout | None = None
    ) -> dict[str, Any]:
        """One V1 request through the server's circuit breaker; see ``_try``."""
        try:
            answer: dict[str, Any] = self._breaker.call(self._try, url, request, expected, timeout)
        except pybreaker.CircuitBreakerError as exc:
            raise CircuitOpen(
                f"circuit open, not retried yet: classifier {self._breaker.name} failed "
                f"<{self._breaker.reset_timeout:g} s ago"
            ) from exc
        return answer

    def _try(
        self, url: str, request: dict[str, Any], expected: int, timeout: httpx.Timeout | None
    ) -> dict[str, Any]:
        """One V1 request with retries; returns the answer, checked to hold ``expected`` predictions."""
        timeout = timeout or self.client.timeout
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self.client.post(url, json=request, timeout=timeout)
            except httpx.TimeoutException as exc:  # a hung server: waiting again would only double the cost
                raise ClassifierUnavailable(
                    f"classifier {self._breaker.name} did not answer within {timeout.read:g} s "
                    f"({type(exc).__name__}, {url})"
                ) from exc
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                log.debug("classifier %s attempt %d: %s", url, attempt + 1, last_error)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last_error = f"HTTP {response.status_code}: {_message(response)}"
                log.debug("classifier %s attempt %d: %s", url, attempt + 1, last_error)
                continue
            if response.status_code >= 400:
                raise RemoteClassifierError(f"classifier at {url} refused the request: {_message(response)}")
            return self._answer(url, response, expected)
        raise ClassifierUnavailable(
            f"classifier server at {url} unavailable after {self.retries + 1} attempts ({last_error})"
        )

    def _answer(self, url: str, response: httpx.Response, expected: int) -> dict[str, Any]:
        try:
            body = response.json()
            predictions = body["predictions"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteClassifierError(f"classifier at {url} sent no V1 predictions: {exc}") from exc
        if not isinstance(predictions, list) or len(predictions) != expected:
            raise RemoteClassifierError(
                f"classifier at {url} answered {len(predictions)} of {expected} instances"
            )
        self._version = str(body.get("model_version") or self._version or "remote")
        return dict(body)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return (
        str(body.get("error") or body.get("detail") or body)[:300]
        if isinstance(body, dict)
        else str(body)[:300]
    )
