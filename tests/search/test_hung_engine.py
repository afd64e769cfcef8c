"""A paused search server, not a dead one: the real OpenSearch and Elasticsearch behind a TCP relay (socat)
that the test pauses with SIGSTOP (pausing the shared servers would stall every other test). One call waits
for the timeout, then the circuit is open and calls fail at once; health answers degraded at once."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.search.base import SearchBackend, SearchRequest
from freshrank.search.elasticsearch import ElasticsearchBackend, ElasticsearchError
from freshrank.search.opensearch import OpenSearchBackend, OpenSearchError
from freshrank.search.service import SearchService
from tests.conftest import SMALL_MOVIES
from tests.search.test_contract import ELASTICSEARCH, OPENSEARCH

ENGINES = [
    pytest.param("opensearch", marks=pytest.mark.opensearch),
    pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def relay(request: pytest.FixtureRequest) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    """(engine, socat relay to its server, the relay's host:port)."""
    engine = request.param
    target = (OPENSEARCH if engine == "opensearch" else ELASTICSEARCH).rsplit("@", 1)[-1]
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is not installed (bash scripts/install-system-deps.sh)")
    port = _free_port()
    process = subprocess.Popen(
        [socat, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"TCP:{target}"],
        start_new_session=True,  # its own process group: SIGSTOP reaches every forked connection
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield engine, process, f"127.0.0.1:{port}"
    os.killpg(process.pid, signal.SIGCONT)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


def _backends(engine: str, relayed: str) -> tuple[SearchBackend, SearchBackend]:
    """(direct, through the relay with a 0.5 s timeout) on one fresh index."""
    index = f"freshrank-test-hung-{uuid.uuid4().hex[:10]}"
    if engine == "opensearch":
        return (
            OpenSearchBackend(f"opensearch://{OPENSEARCH}/{index}"),
            OpenSearchBackend(f"opensearch://{relayed}/{index}", timeout=0.5),
        )
    auth = ELASTICSEARCH.rsplit("@", 1)[0]
    return (
        ElasticsearchBackend(f"elasticsearch://{ELASTICSEARCH}/{index}"),
        ElasticsearchBackend(f"elasticsearch://{auth}@{relayed}/{index}", timeout=0.5),
    )


def _until_answered(
    backend: SearchBackend, request: SearchRequest, errors: tuple[type[Exception], ...]
) -> None:
    """Search until the relayed server answers (a slow answer or an open circuit: retried for 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            assert backend.search(request).hits[0].title == "Home Alone"
            return
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("relay", ENGINES, indirect=True)
def test_a_paused_search_server_costs_one_timeout_then_the_circuit_is_open(
    relay: tuple[str, subprocess.Popen[bytes], str], tmp_path: object
) -> None:
    engine, process, relayed = relay
    errors = (OpenSearchError, ElasticsearchError)
    direct, hung = _backends(engine, relayed)
    try:
        direct.index([Movie.model_validate(row) for row in SMALL_MOVIES])
        request = SearchRequest(text="christmas")
        assert direct.search(request).hits[0].title == "Home Alone"  # warm: 0.5 s is tight on a busy box
        _until_answered(hung, request, errors)
        os.killpg(process.pid, signal.SIGSTOP)
        with pytest.raises(errors, match="timed out") as first:
            hung.search(request)  # the one call that waits
        assert "not retried yet" not in str(first.value)
        for _ in range(3):
            with pytest.raises(errors, match="circuit open, not retried yet"):
                hung.search(request)
        service = SearchService(Settings(state_dir=tmp_path), hung)  # type: ignore[arg-type]
        assert "circuit open" in service.health()["search"]
        os.killpg(process.pid, signal.SIGCONT)
        _until_answered(hung, request, errors)  # after the reset time one trial call closes the circuit
    finally:
        os.killpg(process.pid, signal.SIGCONT)
        direct.drop()  # type: ignore[attr-defined]
