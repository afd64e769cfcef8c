"""A paused search server, not a dead one: the real OpenSearch and Elasticsearch behind a TCP relay (socat)
that the test pauses with SIGSTOP (pausing the shared servers would stall every other test). One call waits
for the timeout, then the circuit is open and calls fail at once; health answers degraded at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from freshrank.bench.servers import free_port
from freshrank.catalog.models import Movie
from freshrank.config import Settings
from freshrank.search import lucene, open_settings_backend
from freshrank.search.base import SearchBackend, SearchRequest
from freshrank.search.elasticsearch import ElasticsearchBackend, ElasticsearchError
from freshrank.search.opensearch import OpenSearchBackend, OpenSearchError
from freshrank.search.service import SearchService
from tests.conftest import SMALL_MOVIES
from tests.relay import Relay, relay_to
from tests.search.test_contract import ELASTICSEARCH, OPENSEARCH

ERRORS = (OpenSearchError, ElasticsearchError)
REQUEST = SearchRequest(text="christmas")
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


@contextmanager
def _indexed(engine: str, relayed: str, timeout: float) -> Iterator[tuple[SearchBackend, SearchBackend]]:
    """(direct, through the relay with ``timeout``) on one fresh index of the small catalogue, answering
    through the relay; the relay resumed and the index dropped on exit."""
    index = f"freshrank-test-hung-{uuid.uuid4().hex[:10]}"
    direct: OpenSearchBackend | ElasticsearchBackend
    if engine == "opensearch":
        direct = OpenSearchBackend(f"opensearch://{OPENSEARCH}/{index}")
        hung: SearchBackend = OpenSearchBackend(f"opensearch://{relayed}/{index}", timeout=timeout)
    else:
        auth = ELASTICSEARCH.rsplit("@", 1)[0]
        direct = ElasticsearchBackend(f"elasticsearch://{ELASTICSEARCH}/{index}")
        hung = ElasticsearchBackend(f"elasticsearch://{auth}@{relayed}/{index}", timeout=timeout)
    try:
        direct.index([Movie.model_validate(row) for row in SMALL_MOVIES])
        assert direct.search(REQUEST).hits[0].title == "Home Alone"  # warm: 0.5 s is tight on a busy box
        _until_answered(hung, REQUEST)
        yield direct, hung
    finally:
        direct.drop()


def _until_answered(backend: SearchBackend, request: SearchRequest) -> None:
    """Search until the relayed server answers (a slow answer or an open circuit: retried for 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            assert backend.search(request).hits[0].title == "Home Alone"
            return
        except ERRORS:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("relay", ENGINES, indirect=True)
def test_a_paused_search_server_costs_one_timeout_then_the_circuit_is_open(
    relay: tuple[str, Relay], tmp_path: Path
) -> None:
    engine, relayed = relay
    with _indexed(engine, relayed.address, timeout=0.5) as (_, hung):
        relayed.pause()
        with pytest.raises(ERRORS, match="timed out") as first:
            hung.search(REQUEST)  # the one call that waits
        assert "not retried yet" not in str(first.value)
        for _ in range(3):
            with pytest.raises(ERRORS, match="circuit open, not retried yet"):
                hung.search(REQUEST)
        service = SearchService(Settings(state_dir=tmp_path), hung)
        assert "circuit open" in service.health()["search"]
        relayed.resume()
        _until_answered(hung, REQUEST)  # after the reset time one trial call closes the circuit


@pytest.mark.parametrize("relay", ENGINES, indirect=True)
def test_health_answers_within_its_deadline_while_the_first_call_still_waits(
    relay: tuple[str, Relay], tmp_path: Path
) -> None:
    engine, relayed = relay
    # The default 5 s timeout: longer than health's 1 s deadline.
    with _indexed(engine, relayed.address, timeout=lucene.REQUEST_TIMEOUT) as (_, slow):
        service = SearchService(Settings(state_dir=tmp_path), slow)
        relayed.pause()
        # The probe of the hung server has not timed out yet: health does not wait for it.
        assert service.health()["search"] == "degraded: no answer within 1 s (server hung?)"
        deadline = time.monotonic() + 30
        while "circuit open" not in service.health()["search"]:  # the probe's timeout opened the circuit
            assert time.monotonic() < deadline, "the circuit never opened"
            time.sleep(0.5)


@pytest.mark.parametrize("scheme", ["opensearch", "elasticsearch"])
def test_the_engines_timeouts_and_breaker_come_from_the_settings(scheme: str, tmp_path: Path) -> None:
    limits = {"timeout_seconds": 0.7, "write_timeout_seconds": 9.0, "breaker_reset_seconds": 4.0}
    url = f"{scheme}://127.0.0.1:{free_port()}/settings-check"  # nothing is called: no server needed
    backend = open_settings_backend(Settings(state_dir=tmp_path, search_url=url, search=limits))
    assert isinstance(backend, OpenSearchBackend | ElasticsearchBackend)
    assert backend.timeout == 0.7 and backend.write_timeout == 9.0 and backend._breaker.reset_timeout == 4.0
