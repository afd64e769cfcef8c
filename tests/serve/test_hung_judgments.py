"""The API with a paused judgments database (MariaDB behind a relay the test pauses, tests/relay.py): a grade
sent while it hangs is answered 503 "judgment not saved … send it again" (one timeout, then at once), never
lost without a word; search answers without the grades; /health says why; once the server answers again the
grade sent again is stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from freshrank.config import JudgmentStoreSettings, Settings
from freshrank.evaluate import open_judgment_store
from freshrank.serve.api import create_app
from tests.evaluate.test_hung_store import relayed_url, server_address
from tests.evaluate.test_store import SERVER_URLS
from tests.relay import Relay, relay_to
from tests.serve.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRADE = {"query": "#christmas", "genre": "Family", "doc_id": 101, "grade": 3}


@pytest.fixture
def hung_api(workbench_settings: Settings) -> Iterator[tuple[TestClient, Relay, str]]:
    """(the API, the relay in front of MariaDB, the judgments table prefix)."""
    prefix = f"api{uuid.uuid4().hex[:8]}_"
    with relay_to(server_address("mariadb")) as relay:
        settings = workbench_settings.model_copy(deep=True)
        settings.judgments_url = relayed_url("mariadb", relay)
        settings.judgments_store = JudgmentStoreSettings(
            timeout_seconds=3, breaker_reset_seconds=10, table_prefix=prefix
        )
        with TestClient(create_app(settings)) as client:
            yield client, relay, prefix
    store = open_judgment_store(SERVER_URLS["mariadb"], table_prefix=prefix)
    store.drop()
    store.close()


@pytest.mark.mariadb
def test_a_grade_sent_while_the_database_hangs_is_refused_with_a_reason_not_lost(
    hung_api: tuple[TestClient, Relay, str],
) -> None:
    client, relay, prefix = hung_api
    assert client.post("/api/judgments", json={**GRADE, "doc_id": 102}, headers=AUTH).status_code == 200
    relay.pause()
    for expected in ("unavailable", "circuit open, not retried yet"):  # one timeout, then at once
        refused = client.post("/api/judgments", json=GRADE, headers=AUTH)
        assert refused.status_code == 503
        detail = refused.json()["detail"]
        assert detail.startswith("judgment not saved: ") and expected in detail
        assert "Send it again when the store is back" in detail
        assert ":freshrank@" not in detail  # a URL shows with its password masked
    page = client.get("/api/search", params={"q": "christmas", "trend": "#christmas", "genre": "Family"})
    assert page.status_code == 200 and page.json()["hits"]
    assert any("grades are not shown" in w for w in page.json()["warnings"])
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["components"]["judgments"].startswith("degraded: circuit open")
    relay.resume()
    deadline = time.monotonic() + 60
    while (resent := client.post("/api/judgments", json=GRADE, headers=AUTH)).status_code == 503:
        assert time.monotonic() < deadline, resent.text  # until the circuit closes after its reset time
        time.sleep(0.5)
    assert resent.status_code == 200 and resent.json()["added"] == 1  # it was not half-saved before
    assert client.get("/health").json()["components"]["judgments"] == "ok"
    store = open_judgment_store(SERVER_URLS["mariadb"], table_prefix=prefix)
    assert {(j.doc_id, j.grade) for j in store.judgments()} == {(101, 3), (102, 3)}
    store.close()
