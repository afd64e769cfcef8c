"""The KServe classifier server as a real process on 127.0.0.1: V1, V2, readiness, metrics, bad requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from freshrank.config import Settings
from freshrank.serve.kserve_server import MODEL_NAME, ZeroShotModel
from tests.conftest import SHARED_DATA

V1 = f"/v1/models/{MODEL_NAME}:predict"
V2 = f"/v2/models/{MODEL_NAME}/infer"
CHRISTMAS = "A boy left behind at Christmas defends his house from burglars while Santa visits."
DINOSAURS = "Scientists clone dinosaurs for a theme park, and the dinosaurs escape."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    state_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FRESHRANK_STATE_DIR": str(state_dir), "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    cmd = [
        str(Path(sys.executable).with_name("freshrank")),
        "serve",
        "classifier",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = (state_dir.parent / "server.log").open(
        "wb"
    )  # a file, not a pipe: a full pipe would block the server
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 240.0) -> list[int]:
    """Poll readiness until 200; returns the status codes seen on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            status = httpx.get(f"{base}/v1/models/{MODEL_NAME}", timeout=5).status_code
            seen.append(status)
            if status == 200:
                return seen
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"server not ready after {timeout}s (saw {seen[-5:]})")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The search index the module's server fits its catalogue from (empty until a test loads it)."""
    return f"sqlite:///{tmp_path_factory.mktemp('kserve-index') / 'search.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_index: str) -> Iterator[str]:
    """A server with an empty registry, so it serves the implicit champion: the embedding classifier."""
    port = free_port()
    proc = start_server(
        tmp_path_factory.mktemp("kserve") / "state", port, {"FRESHRANK_SEARCH_URL": server_index}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        seen = wait_ready(base, proc)
        assert set(seen) <= {200, 503}, seen  # before the model loads, readiness says 503, never an error
        yield base
    finally:
        stop(proc)


def test_model_is_ready_only_after_load(tmp_path: Path) -> None:
    model = ZeroShotModel(Settings(state_dir=tmp_path / "state"))
    assert model.ready is False and model.classifier is None
    assert model.load() is True
    assert model.ready is True and model.version.startswith("embedding-")


def test_v1_predicts_every_instance_with_sorted_labels(server: str) -> None:
    instances = [
        {"sequence": CHRISTMAS, "labels": ["dinosaurs", "christmas"]},
        {"sequence": DINOSAURS, "labels": ["christmas", "dinosaurs", "zombies"]},
        {"sequence": "Zombies overrun a shopping mall.", "labels": "zombies"},
    ]
    response = httpx.post(server + V1, json={"instances": instances}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL_NAME and body["model_version"].startswith("embedding-")
    predictions = body["predictions"]
    assert [p["sequence"] for p in predictions] == [i["sequence"] for i in instances]
    assert predictions[0]["labels"][0] == "christmas"
    assert predictions[1]["labels"][0] == "dinosaurs"
    assert sorted(predictions[1]["labels"]) == ["christmas", "dinosaurs", "zombies"]
    assert predictions[2]["labels"] == ["zombies"]
    for p in predictions:
        assert p["scores"] == sorted(p["scores"], reverse=True)
        assert all(0.0 <= s <= 1.0 for s in p["scores"])


def test_v1_accepts_a_body_without_json_content_type(server: str) -> None:
    body = '{"instances": [{"sequence": "x y z", "labels": ["a"]}]}'
    response = httpx.post(server + V1, content=body, headers={"content-type": "text/plain"}, timeout=30)
    assert response.status_code == 200, response.text


def test_v2_infer_with_shared_and_per_sequence_labels(server: str) -> None:
    shared = {
        "inputs": [
            {"name": "sequence", "shape": [2], "datatype": "BYTES", "data": [CHRISTMAS, DINOSAURS]},
            {"name": "labels", "shape": [2], "datatype": "BYTES", "data": ["dinosaurs", "christmas"]},
        ]
    }
    response = httpx.post(server + V2, json=shared, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL_NAME and body["model_version"].startswith("embedding-")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["labels"]["shape"] == [2, 2] and outputs["scores"]["datatype"] == "FP32"
    assert outputs["labels"]["data"] == ["christmas", "dinosaurs", "dinosaurs", "christmas"]

    per_row = {
        "inputs": [
            {"name": "sequence", "shape": [2], "datatype": "BYTES", "data": [CHRISTMAS, DINOSAURS]},
            {
                "name": "labels",
                "shape": [2, 2],
                "datatype": "BYTES",
                "data": ["zombies", "christmas", "dinosaurs", "ocean"],
            },
        ]
    }
    outputs = {o["name"]: o for o in httpx.post(server + V2, json=per_row, timeout=60).json()["outputs"]}
    assert outputs["labels"]["data"][0] == "christmas" and outputs["labels"]["data"][2] == "dinosaurs"


def test_readiness_on_both_protocols(server: str) -> None:
    assert httpx.get(f"{server}/v1/models/{MODEL_NAME}").json() == {"name": MODEL_NAME, "ready": True}
    assert httpx.get(f"{server}/v2/models/{MODEL_NAME}/ready").json()["ready"] is True
    assert httpx.get(f"{server}/v1/models/nope").status_code == 404


def test_prometheus_metrics(server: str) -> None:
    httpx.post(server + V1, json={"instances": [{"sequence": CHRISTMAS, "labels": ["a", "b"]}]}, timeout=30)
    text = httpx.get(f"{server}/metrics").text
    assert f'request_predict_seconds_count{{model_name="{MODEL_NAME}"}}' in text
    assert 'freshrank_served_model_info{model="zero-shot-classifier",version="embedding-' in text
    assert "freshrank_classification_pairs_total" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"labels": ["a"]}]}, "missing field 'sequence'"),
        ({"instances": [{"sequence": "text"}]}, "missing field 'labels'"),
        ({"instances": [{"sequence": "text", "labels": [f"l{i}" for i in range(10_000)]}]}, "10000 labels"),
        ({"instances": [{"sequence": "x" * 1_000_000, "labels": ["a"]}]}, "1000000 characters"),
        ({"instances": [{"sequence": "text", "labels": []}]}, "non-empty list"),
        ({"instances": [{"sequence": "   ", "labels": ["a"]}]}, "is empty"),
        ({"instances": [{"sequence": "text", "labels": [3]}]}, "must be a string"),
        ({"instances": []}, "non-empty list"),
        ({"sequence": "text"}, "expected a JSON object"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_v1_requests_get_400_with_a_clear_message(server: str, body: object, message: str) -> None:
    response = httpx.post(server + V1, json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_bad_v2_requests_get_400(server: str) -> None:
    missing = {"inputs": [{"name": "sequence", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
    response = httpx.post(server + V2, json=missing, timeout=30)
    assert response.status_code == 400 and "missing input 'labels'" in response.json()["error"]
    wrong_type = {
        "inputs": [
            {"name": "sequence", "shape": [1], "datatype": "BYTES", "data": ["x"]},
            {"name": "labels", "shape": [1], "datatype": "FP32", "data": [1.0]},
        ]
    }
    response = httpx.post(server + V2, json=wrong_type, timeout=30)
    assert response.status_code == 400 and "BYTES" in response.json()["error"]


def test_not_json_is_400(server: str) -> None:
    response = httpx.post(server + V1, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a listening TCP socket on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_binds_loopback_only(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    assert listening_addresses(port) == {"127.0.0.1"}


def test_remote_classifier_against_the_server(server: str) -> None:
    from freshrank.classify.remote import RemoteClassifier, RemoteClassifierError

    remote = RemoteClassifier(server, batch_size=2, max_labels=2)
    scores = remote.predict(
        [CHRISTMAS, DINOSAURS, "Zombies overrun a mall."], ["dinosaurs", "christmas", "zombies"]
    )
    assert scores.shape == (3, 3)
    assert scores[0].argmax() == 1 and scores[1].argmax() == 0 and scores[2].argmax() == 2
    assert remote.version.startswith("embedding-")
    with pytest.raises(RemoteClassifierError, match="characters; the limit is"):
        remote.predict(["x"], ["y" * 10_000])


def test_refresh_with_classifier_url(
    server: str, server_index: str, tmp_path: Path, small_catalog_file: Path
) -> None:
    """`freshrank refresh --classifier-url` scores through the server, under the served model's version."""
    env = {
        **os.environ,
        "FRESHRANK_STATE_DIR": str(tmp_path / "state"),
        "FRESHRANK_SEARCH_URL": server_index,  # the index the server fits: both score one catalogue
        "HF_HUB_OFFLINE": "1",
    }
    cli = str(Path(sys.executable).with_name("freshrank"))
    loaded = subprocess.run(
        [cli, "load", "-i", str(small_catalog_file), "--json"], env=env, capture_output=True
    )
    assert loaded.returncode == 0, loaded.stderr.decode()[-2000:]
    done = subprocess.run(
        [cli, "refresh", "--classifier-url", server, "--trend", "#christmas", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["scored"] == ["christmas"] and report["model_version"].startswith("embedding-")
    assert report["pairs"] == 8


def test_a_body_over_the_limit_is_413_before_parsing(server: str) -> None:
    big = b'{"instances": [' + b" " * (2 << 20) + b"]}"
    response = httpx.post(f"{server}/v1/models/{MODEL_NAME}:predict", content=big)
    assert response.status_code == 413
    assert "larger than 1,048,576 bytes" in response.json()["detail"]


@pytest.fixture(scope="module")
def tiny_hybrid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained hybrid (every signal: cosine, BM25, NLI head, PRF, cross-encoder), tiny enough for CPU."""
    from freshrank.train.trainer import train
    from tests.classify.conftest import tiny_params

    root = tmp_path_factory.mktemp("tiny-hybrid")
    settings = Settings(data_dir=SHARED_DATA, state_dir=root / "state")
    return train(tiny_params(), root / "model", settings).model_dir


def test_remote_scores_equal_local_scores(
    tiny_hybrid: Path, tmp_path: Path, small_catalog_file: Path
) -> None:
    """One model version, one set of scores: a trained hybrid scored in-process and by `serve classifier`."""
    from freshrank.classify.factory import load_classifier
    from freshrank.classify.registry import ModelMetrics
    from freshrank.classify.remote import RemoteClassifier, RemoteClassifierError
    from freshrank.loop import ScoringLoop
    from freshrank.train.registry import Registry

    state = tmp_path / "state"
    settings = Settings(state_dir=state)
    registry = Registry.from_settings(settings)
    card = registry.register(
        tiny_hybrid,
        model_type="hybrid",
        base_model="",
        data="",
        data_hash="",
        params={},
        metrics=ModelMetrics(),
    )
    registry.set_champion(card.version, "test")
    ScoringLoop.from_settings(settings).load(small_catalog_file)
    movies = ScoringLoop.from_settings(settings).reader.catalog()
    labels = ["christmas", "#DinosaurMovies", "space war"]
    local = load_classifier(settings).fit(movies)
    expected = local.score(labels)

    port = free_port()
    proc = start_server(state, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        remote = RemoteClassifier(f"http://127.0.0.1:{port}").fit(list(reversed(movies)))
        got = remote.score(labels)[:, ::-1]  # fitted in reverse order: columns come back in that order
        assert remote.version == local.version == card.version
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert (np.argsort(-got, axis=1, kind="stable") == np.argsort(-expected, axis=1, kind="stable")).all()
        # what the remote score used to be (free texts, no catalogue statistics) is not the local score
        texts = remote.predict([m.document for m in movies], labels).T
        assert not np.allclose(texts, expected, atol=1e-3)
        with pytest.raises(RemoteClassifierError, match="another catalogue"):
            RemoteClassifier(f"http://127.0.0.1:{port}").fit(movies[:-1]).score(labels)
    finally:
        stop(proc)
