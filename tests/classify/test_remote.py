"""RemoteClassifier failure handling: a server that is down, one that is still loading, bad answers.

Its normal operation against the real KServe server is tested in tests/serve/test_kserve_server.py.
"""

from __future__ import annotations

import socket
import time

import httpx
import numpy as np
import pytest

from freshrank.catalog.models import Movie
from freshrank.classify.remote import (
    ClassifierUnavailable,
    RemoteClassifier,
    RemoteClassifierError,
    catalogue_fingerprint,
    catalogue_url,
    predict_url,
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


def test_predict_url() -> None:
    assert predict_url("http://h:8080") == "http://h:8080/v1/models/zero-shot-classifier:predict"
    assert predict_url("http://h:8080/") == "http://h:8080/v1/models/zero-shot-classifier:predict"
    full = "http://h/v1/models/other:predict"
    assert predict_url(full) == full
    with pytest.raises(ValueError, match="http"):
        RemoteClassifier("h:8080")


def test_server_down_is_a_clear_error_after_retries() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    remote = RemoteClassifier(url, retries=2, backoff_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(ClassifierUnavailable, match=r"unavailable after 3 attempts \(ConnectError"):
        remote.predict(["a movie"], ["label"])
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05 s, then 0.1 s


def _answer(request: httpx.Request) -> dict[str, object]:
    import json

    instances = json.loads(request.content)["instances"]
    predictions = []
    for instance in instances:
        labels = list(
            reversed(instance["labels"])
        )  # the server sorts by score: order differs from the request
        scores = [round(0.1 * (len(labels) - i), 3) for i in range(len(labels))]
        predictions.append({"sequence": instance["sequence"], "labels": labels, "scores": scores})
    return {"predictions": predictions, "model_version": "nli-abc"}


def test_retries_a_loading_server_then_maps_sorted_labels_back() -> None:
    """A real server's loading window is too short to hit reliably, so this fault is simulated."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, json={"error": "Model with name zero-shot-classifier is not ready."})
        return httpx.Response(200, json=_answer(request))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    remote = RemoteClassifier(
        "http://kserve:8080", client=client, backoff_seconds=0.01, batch_size=2, max_labels=2
    )
    movies = [Movie(id=i, title=f"T{i}", overview="o") for i in range(3)]
    scores = remote.predict([m.document for m in movies], ["a", "b", "c"]).T
    assert scores.shape == (3, 3)
    # each request holds <= 2 labels; within a request the reversed order gets the higher score
    np.testing.assert_allclose(scores[0], [0.1] * 3)  # rows are labels; "a": last of chunk ["a", "b"]
    np.testing.assert_allclose(scores[1], [0.2] * 3)
    np.testing.assert_allclose(scores[2], [0.1] * 3)  # "c": alone in its chunk
    assert len(calls) == 1 + 2 * 2  # one 503, then 2 label chunks x 2 sequence batches
    assert remote.version == "nli-abc"


def test_4xx_is_not_retried_and_carries_the_server_message() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": "instance 0: 10000 labels; the limit is 100 per instance"})

    remote = RemoteClassifier("http://kserve", client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(RemoteClassifierError, match="the limit is 100"):
        remote.predict(["x"], ["y"])
    assert len(calls) == 1


def test_an_answer_that_is_not_v1_is_an_error() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"outputs": []})))
    with pytest.raises(RemoteClassifierError, match="no V1 predictions"):
        RemoteClassifier("http://kserve", client=client).predict(["x"], ["y"])


def test_empty_inputs_cost_no_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    remote = RemoteClassifier("http://kserve", client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert remote.predict([], ["a"]).shape == (0, 1)
    assert remote.predict(["x"], []).shape == (1, 0)
    assert remote.score(["a"]).shape == (1, 0)  # nothing fitted
    movies = [Movie(id=1, title="T", overview="o")]
    assert remote.fit(movies).score([]).shape == (0, 1)


def test_catalogue_url_sits_beside_the_predict_url() -> None:
    assert catalogue_url(predict_url("http://h:1")) == (
        "http://h:1/v1/models/zero-shot-classifier-catalogue:predict"
    )
    assert catalogue_url("http://h/v1/models/m:predict") == "http://h/v1/models/m-catalogue:predict"


def test_catalogue_fingerprint_ignores_order() -> None:
    assert catalogue_fingerprint([3, 1, 2]) == catalogue_fingerprint([1, 2, 3])
    assert catalogue_fingerprint([1, 2]) != catalogue_fingerprint([1, 2, 3])
