"""Anonymous searches never write: 1,000 made-up trend labels through the API leave the index unchanged, the
in-memory ad-hoc cache stays under its cap, and a client over its rate gets 429 with Retry-After. A token
holder's new label is scored through the loop and stored."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from freshrank.config import Settings
from freshrank.search.sqlite import SqliteBackend, sqlite_path
from freshrank.serve.api import create_app
from tests.serve.conftest import TOKEN

CACHE_SIZE = 16
PER_CLIENT = 40
CLIENTS = 2
LABELS = 1_000


def _digest(settings: Settings) -> str:
    path = Path(sqlite_path(settings.resolved_search_url))
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + "-wal")):
        digest.update(part.read_bytes() if part.exists() else b"")
    return digest.hexdigest()


@pytest.fixture
def own_state(workbench_settings: Settings, tmp_path: Path) -> Settings:
    """A copy of the workbench state (so the token holder's write does not leak into other tests)."""
    shutil.copytree(workbench_settings.state_dir, tmp_path / "state")
    search = workbench_settings.search.model_copy(
        update={"adhoc_cache_size": CACHE_SIZE, "adhoc_per_client": PER_CLIENT, "adhoc_window_seconds": 600}
    )
    return workbench_settings.model_copy(update={"state_dir": tmp_path / "state", "search": search})


def test_a_thousand_made_up_labels_leave_the_index_unchanged(own_state: Settings) -> None:
    before = _digest(own_state)
    app = create_app(own_state)
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    with TestClient(app, client=("10.0.0.1", 1)) as first, TestClient(app, client=("10.0.0.2", 2)) as second:
        for i in range(LABELS):
            client = first if i % CLIENTS == 0 else second
            response = client.get("/api/search", params={"trend": f"#zq{i}blorfwick", "genre": "Family"})
            statuses[response.status_code] += 1
            if response.status_code == 429:
                retry_after.add(response.headers["Retry-After"])
                assert "retry after" in response.json()["detail"]
            else:
                assert response.status_code == 200, response.text
                body = response.json()
                assert not [w for w in body["warnings"] if "not scored" in w]  # the ad-hoc scores boost
        cache = app.state.workbench.adhoc
        assert len(cache) <= CACHE_SIZE
        last = f"#zq{CLIENTS * PER_CLIENT - 1}blorfwick"  # scored last, so still cached: no rate charged
        assert second.get("/api/search", params={"trend": last}).status_code == 200
    assert statuses == {200: CLIENTS * PER_CLIENT, 429: LABELS - CLIENTS * PER_CLIENT}
    assert retry_after and all(int(value) >= 1 for value in retry_after)
    assert _digest(own_state) == before


def test_a_token_holder_scores_new_labels_through_the_loop(own_state: Settings) -> None:
    with TestClient(create_app(own_state)) as client:
        anonymous = client.get("/api/search", params={"trend": "#dinosaurparade"})
        assert anonymous.status_code == 200
        holder = client.get(
            "/api/search",
            params={"trend": "#dinosaurparade"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert holder.status_code == 200
    backend = SqliteBackend(own_state.resolved_search_url, read_only=True)
    try:
        assert any("dinosaur parade" in backend.scored_labels(v) for v in backend.model_versions())
    finally:
        backend.close()
