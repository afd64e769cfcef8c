"""A paused search server, not a dead one: the real OpenSearch and Elasticsearch behind a TCP relay (socat)
that the test pauses with SIGSTOP (pausing the shared servers would stall every other test). One call waits
for the timeout, then the circuit is open and calls fail at once; health answers degraded at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshrank.bench.servers import free_port
from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.search import open_settings_backend
from freshrank.search.base import SearchBackend, SearchRequest
from freshrank.search.elasticsearch import ElasticsearchBackend, ElasticsearchError
from freshrank.search.opensearch import OpenSearchBackend, OpenSearchError
from freshrank.search.service import SearchService
from tests.conftest import SMALL_MOVIES
from tests.relay import Relay, relay_to
from tests.search.test_contract import ELASTICSEARCH, OPENSEARCH

ENGINES = [
    pytest.param("opensearch", marks=pytest.mark.opensearch),
    pytest.param("elasticsearch", marks=pytest.mark.elasticsearch),
]


@pytest.fixture
def relay(request: pytest.FixtureRequest) -> Iterator[tuple[str, Relay]]:
    """(engine, a socat relay to its server)."""
    engine = request.param
    with relay_to((OPENSEARCH if engine == "opensearch" else ELASTICSEARCH).rsplit("@", 1)[-1]) as relayed:
        yield engine, relayed


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
    relay: tuple[str, Relay], tmp_path: object
) -> None:
    engine, relayed = relay
    errors = (OpenSearchError, ElasticsearchError)
    direct, hung = _backends(engine, relayed.address)
    try:
        direct.index([Movie.model_validate(row) for row in SMALL_MOVIES])
        request = SearchRequest(text="christmas")
        assert direct.search(request).hits[0].title == "Home Alone"  # warm: 0.5 s is tight on a busy box
        _until_answered(hung, request, errors)
        relayed.pause()
        with pytest.raises(errors, match="timed out") as first:
            hung.search(request)  # the one call that waits
        assert "not retried yet" not in str(first.value)
        for _ in range(3):
            with pytest.raises(errors, match="circuit open, not retried yet"):
                hung.search(request)
        service = SearchService(Settings(state_dir=tmp_path), hung)  # type: ignore[arg-type]
        assert "circuit open" in service.health()["search"]
        relayed.resume()
        _until_answered(hung, request, errors)  # after the reset time one trial call closes the circuit
    finally:
        relayed.resume()
        direct.drop()  # type: ignore[attr-defined]


@pytest.mark.parametrize("relay", ENGINES, indirect=True)
def test_health_answers_within_its_deadline_while_the_first_call_still_waits(
    relay: tuple[str, Relay], tmp_path: object
) -> None:
    engine, relayed = relay
    errors = (OpenSearchError, ElasticsearchError)
    direct, _ = _backends(engine, relayed.address)
    if engine == "opensearch":  # the default 5 s timeout: longer than health's 1 s deadline
        slow: SearchBackend = OpenSearchBackend(f"opensearch://{relayed.address}/{direct.index_name}")  # type: ignore[attr-defined]
    else:
        auth = ELASTICSEARCH.rsplit("@", 1)[0]
        slow = ElasticsearchBackend(f"elasticsearch://{auth}@{relayed.address}/{direct.index_name}")  # type: ignore[attr-defined]
    try:
        direct.index([Movie.model_validate(row) for row in SMALL_MOVIES])
        _until_answered(slow, SearchRequest(text="christmas"), errors)
        service = SearchService(Settings(state_dir=tmp_path), slow)  # type: ignore[arg-type]
        relayed.pause()
        # The probe of the hung server has not timed out yet: health does not wait for it.
        assert service.health()["search"] == "degraded: no answer within 1 s (server hung?)"
        deadline = time.monotonic() + 30
        while "circuit open" not in service.health()["search"]:  # the probe's timeout opened the circuit
            assert time.monotonic() < deadline, "the circuit never opened"
            time.sleep(0.5)
    finally:
        relayed.resume()
        direct.drop()  # type: ignore[attr-defined]


@pytest.mark.parametrize("scheme", ["opensearch", "elasticsearch"])
def test_the_engines_timeouts_and_breaker_come_from_the_settings(scheme: str, tmp_path: Path) -> None:
    limits = {"timeout_seconds": 0.7, "write_timeout_seconds": 9.0, "breaker_reset_seconds": 4.0}
    url = f"{scheme}://127.0.0.1:{free_port()}/settings-check"  # nothing is called: no server needed
    backend = open_settings_backend(Settings(state_dir=tmp_path, search_url=url, search=limits))
    assert isinstance(backend, OpenSearchBackend | ElasticsearchBackend)
    assert backend.timeout == 0.7 and backend.write_timeout == 9.0 and backend._breaker.reset_timeout == 4.0
