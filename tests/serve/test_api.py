"""The search API in-process (FastAPI TestClient) over the real embedded stores and embedding classifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from freshrank.config import Settings
from freshrank.evaluate.base import QueryId
from freshrank.evaluate.metrics import judged_at_k, ndcg_at_k, precision_at_k
from freshrank.evaluate.store import open_judgment_store
from freshrank.serve.api import create_app
from freshrank.serve.schemas import SearchOut
from freshrank.trends import Trend, open_trend_store
from tests.serve.conftest import TOKEN, TRENDS, XSS_HASHTAG, XSS_TITLE, build_state, make_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHRISTMAS_FAMILY = {"trend": "#christmas", "genre": "Family"}


@pytest.fixture(scope="module")
def client(workbench_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(workbench_settings)) as test_client:
        yield test_client


def search(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # The answer is built as plain data and serialised as it is: exactly SearchOut's shape and types.
    assert SearchOut.model_validate_json(response.content, strict=True).model_dump(mode="json") == body
    return body


# Search and its explanation -------------------------------------------------------------------------


def test_search_explains_every_score(client: TestClient, workbench_settings: Settings) -> None:
    body = search(client, q="christmas")
    weight = workbench_settings.search.boost_weight
    assert body["hits"], body
    assert body["query"]["trends"] == [
        "#christmas",
        "#dinosaurs",
        XSS_HASHTAG,
    ]  # no trend picked: all live ones
    for hit in body["hits"]:
        contributions = {c["hashtag"]: c for c in hit["contributions"]}
        assert set(contributions) == {"#christmas", "#dinosaurs", XSS_HASHTAG}
        for c in contributions.values():
            assert c["contribution"] == pytest.approx(c["weight"] * c["trend_score"])
        # the live trends boost with weights from their strength, summing to boost_weight
        assert sum(c["weight"] for c in contributions.values()) == pytest.approx(weight)
        assert contributions["#christmas"]["weight"] > contributions["#dinosaurs"]["weight"]
        assert hit["score"] == pytest.approx(
            hit["text_score"] + sum(c["contribution"] for c in contributions.values())
        )
    scores = [hit["score"] for hit in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_trend_only_query_ranks_by_the_classifier(client: TestClient) -> None:
    body = search(client, **CHRISTMAS_FAMILY)
    assert body["query"]["key"] == "#christmas"
    assert all("Family" in hit["genres"] for hit in body["hits"])
    assert all(hit["text_score"] == 0 for hit in body["hits"])
    top3 = {hit["title"] for hit in body["hits"][:3]}
    # The real embedding classifier puts the Christmas family films first.
    assert (
        len(top3 & {"The Polar Express", "Elf", "The Santa Clause", "Arthur Christmas", "Jingle All the Way"})
        >= 2
    )
    assert {hit["id"]: hit["grade"] for hit in body["hits"]}[
        2
    ] == 3  # seeded judgments come back with the hits


def test_no_boost_and_paging(client: TestClient) -> None:
    body = search(client, q="christmas", boost="false")
    assert body["query"]["trends"] == []
    assert all(hit["contributions"] == [] and hit["score"] == hit["text_score"] for hit in body["hits"])
    first, second = search(client, genre="Family", limit=3), search(client, genre="Family", limit=3, offset=3)
    assert [h["rank"] for h in second["hits"]] == [4, 5, 6]
    assert not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}


@pytest.mark.parametrize(
    "text", ['"; DROP TABLE movies; --', "NEAR(christmas santa) AND title:*", "  ", "\u202e‮"]
)
def test_query_syntax_is_plain_text(client: TestClient, text: str) -> None:
    response = client.get("/api/search", params={"q": text})
    assert response.status_code == 200, response.text
    assert search(client, q="elf")["hits"]  # the table is still there


def test_genres_and_trends(client: TestClient) -> None:
    genres = client.get("/api/genres").json()
    assert {"Family", "Horror", "Animation"} <= set(genres)
    trends = client.get("/api/trends", params={"n": 2}).json()
    assert [t["hashtag"] for t in trends] == ["#christmas", "#dinosaurs"]
    assert trends[0]["history"][-1] == 140 and trends[0]["count"] == 420 and trends[0]["baseline"] == 30.0
    assert {"authors", "expected", "evidence", "p_value"} <= set(trends[0])  # the burst test's explanation
    assert 0 <= trends[0]["p_value"] < 0.5


# Validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"trend": "#" + "a" * 10_000}, "trend.0: String should have at most 280 characters"),
        ({"q": "x" * 501}, "q: String should have at most 500 characters"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 101}, "limit: Input should be less than or equal to 100"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
        ({"genre": "g" * 101}, "genre: String should have at most 100 characters"),
        ({"surprise": "1"}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_search_input_is_a_clear_422(client: TestClient, params: dict[str, Any], message: str) -> None:
    response = client.get("/api/search", params=params)
    assert response.status_code == 422
    assert response.json() == {"detail": message}
    assert len(response.text) < 300  # the hostile input is not echoed back


def test_bad_judgments_are_refused(client: TestClient) -> None:
    base = {"query": "#christmas", "genre": "Family", "doc_id": 1}
    for body, where in [
        ({**base, "grade": 4}, "grade"),
        ({**base, "grade": -1}, "grade"),
        ({**base, "grade": 2, "doc_id": -5}, "doc_id"),
        ({**base, "grade": 2, "query": ""}, "query"),
        ({**base, "grade": 2, "query": "#" + "x" * 10_000}, "query"),
        ({**base, "grade": "three"}, "grade"),
    ]:
        response = client.post("/api/judgments", json=body, headers=AUTH)
        assert response.status_code == 422, body
        assert response.json()["detail"].startswith(where)


# Tokens ---------------------------------------------------------------------------------------------


WRITES = [
    ("post", "/api/judgments", {"query": "#christmas", "genre": "Family", "doc_id": 106, "grade": 1}),
    ("post", "/api/snapshots", {"name": "token-check"}),
    ("post", "/api/refresh", None),
    ("post", "/api/models/rollback", None),
    ("post", "/api/models/promote", {"version": "embedding"}),
    ("delete", "/api/snapshots/token-check", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_need_the_right_token(client: TestClient, method: str, path: str, body: Any) -> None:
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    for headers, why in [
        ({}, "needs the API token"),
        ({"Authorization": "Bearer wrong-token"}, "wrong API token"),
        ({"Authorization": f"Basic {TOKEN}"}, "needs the API token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "wrong API token"),
    ]:
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 401, (path, headers)
        assert why in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_writes_are_off_without_a_configured_token(workbench_settings: Settings) -> None:
    settings = workbench_settings.model_copy(
        update={"serve": workbench_settings.serve.model_copy(update={"api_token": ""})}
    )
    with TestClient(create_app(settings)) as anonymous:
        response = anonymous.post("/api/refresh", headers={"Authorization": "Bearer "})
        assert response.status_code == 403
        assert "no API token is configured" in response.json()["detail"]
        assert anonymous.get("/api/search", params={"q": "elf"}).status_code == 200  # reading stays public


# Judging and metrics --------------------------------------------------------------------------------


def test_judgment_is_saved_at_once_and_moves_the_metrics(
    client: TestClient, workbench_settings: Settings
) -> None:
    query = {"trend": "#dinosaurs", "genre": "Animation"}
    before = client.get("/api/query-metrics", params=query).json()
    assert before["judgments"] == 0 and before["ndcg_at_10"] == 0.0 and before["judged_at_10"] == 0.0
    top = search(client, **query)["hits"][0]
    response = client.post(
        "/api/judgments",
        headers=AUTH,
        json={"query": "#dinosaurs", "genre": "Animation", "doc_id": top["id"], "grade": 3},
    )
    assert response.status_code == 200 and response.json()["added"] == 1
    store = open_judgment_store(workbench_settings.resolved_judgments_url)
    try:
        change = store.changes(trend="#dinosaurs", genre="Animation", doc_id=top["id"])[-1]
        assert (change.new_grade, change.who) == (3, "workbench")
    finally:
        store.close()
    after = client.get("/api/query-metrics", params=query).json()
    assert after["ndcg_at_10"] == pytest.approx(1.0) and after["p_at_10"] == pytest.approx(0.1)
    assert after["judged_in_top"] == 1 and after["relevant"] == 1


def test_query_metrics_match_the_reference_definitions(
    client: TestClient, workbench_settings: Settings
) -> None:
    ranking = [hit["id"] for hit in search(client, **CHRISTMAS_FAMILY)["hits"]]
    store = open_judgment_store(workbench_settings.resolved_judgments_url)
    try:
        qrels = {j.doc_id: j.grade for j in store.judgments(trend="#christmas", genre="Family")}
    finally:
        store.close()
    metrics = client.get("/api/query-metrics", params=CHRISTMAS_FAMILY).json()
    assert QueryId.parse(metrics["query_id"]) == QueryId("#christmas", "Family")  # the key evaluate uses
    assert metrics["ndcg_at_10"] == pytest.approx(ndcg_at_k(ranking, qrels, 10))
    assert metrics["p_at_10"] == pytest.approx(precision_at_k(ranking, qrels, 10))
    assert metrics["judged_at_10"] == pytest.approx(judged_at_k(ranking, qrels, 10))
    assert 0 < metrics["ndcg_at_10"] < 1


def test_text_queries_are_judged_under_their_text(client: TestClient) -> None:
    assert search(client, q="  santa   claus ")["query"]["key"] == "santa claus"
    metrics = client.get("/api/query-metrics", params={"q": "elf", "boost": "false"}).json()
    assert metrics["key"] == "elf" and metrics["judgments"] == 0
    empty = client.get("/api/query-metrics").json()
    # nothing to judge without text or trend
    assert empty["key"] == empty["query_id"] == "" and empty["ndcg_at_10"] is None


# Compare and snapshots ------------------------------------------------------------------------------


def test_compare_baseline_against_boosted(client: TestClient) -> None:
    body = client.get("/api/compare", params={**CHRISTMAS_FAMILY, "mode": "baseline"}).json()
    left, right = body["left"], body["right"]
    assert left["query"]["trends"] == [] and left["query"]["q"] == "christmas"  # BM25 on the hashtag's words
    assert right["query"]["trends"] == ["#christmas"]
    left_rank = {row["id"]: row["rank"] for row in left["rows"]}
    for row in right["rows"]:
        expected = None if row["id"] not in left_rank else left_rank[row["id"]] - row["rank"]
        assert row["movement"] == expected
    # Lexical search finds only the films that say "Christmas"; the classifier ranks all Family films.
    assert len(right["rows"]) > len(left["rows"])
    assert right["metrics"]["ndcg_at_10"] >= left["metrics"]["ndcg_at_10"]


def test_compare_models_needs_a_known_candidate(client: TestClient) -> None:
    response = client.get("/api/compare", params={**CHRISTMAS_FAMILY, "mode": "models"})
    assert response.status_code == 422 and "candidate" in response.json()["detail"]
    response = client.get(
        "/api/compare", params={**CHRISTMAS_FAMILY, "mode": "models", "candidate": "nope1234"}
    )
    assert response.status_code == 404 and "no model version" in response.json()["detail"]


def test_compare_models_champion_against_embedding(client: TestClient) -> None:
    body = client.get(
        "/api/compare", params={**CHRISTMAS_FAMILY, "mode": "models", "candidate": "embedding"}
    ).json()
    # classifier.name defaults to "champion", which resolves to the embedding classifier until a promotion.
    assert body["left"]["name"] == "serving (champion embedding)"
    # The champion is the embedding classifier, so the candidate ranks the same: no movement anywhere.
    assert [r["id"] for r in body["left"]["rows"]] == [r["id"] for r in body["right"]["rows"]]
    assert all(row["movement"] == 0 for row in body["right"]["rows"])


def test_snapshots_save_list_diff(client: TestClient) -> None:
    query = {"trend": ["#dinosaurs"], "genre": "Family"}
    first = client.post("/api/snapshots", headers=AUTH, json={"name": "dino-before", **query})
    assert first.status_code == 201, first.text
    assert (
        client.post("/api/snapshots", headers=AUTH, json={"name": "dino-before", **query}).status_code == 409
    )
    ranking = client.get("/api/snapshots/dino-before").json()["ranking"]
    top = ranking[0]["doc_id"]
    client.post(
        "/api/judgments",
        headers=AUTH,
        json={"query": "#dinosaurs", "genre": "Family", "doc_id": top, "grade": 2},
    )
    assert (
        client.post("/api/snapshots", headers=AUTH, json={"name": "dino-after", **query}).status_code == 201
    )
    names = [s["name"] for s in client.get("/api/snapshots").json()]
    assert {"dino-before", "dino-after"} <= set(names)
    diff = client.get("/api/snapshots/diff", params={"a": "dino-before", "b": "dino-after"}).json()
    assert diff["metric_deltas"]["ndcg_at_10"] == pytest.approx(1.0)  # 0 before any judgment, 1 after
    assert all(move["status"] == "same" for move in diff["moves"])
    assert client.get("/api/snapshots/nope").status_code == 404
    assert client.delete("/api/snapshots/dino-after", headers=AUTH).status_code == 204
    assert client.get("/api/snapshots/dino-after").status_code == 404


# Operations -----------------------------------------------------------------------------------------


def test_refresh_models_monitor(client: TestClient) -> None:
    refreshed = client.post("/api/refresh", headers=AUTH).json()
    assert refreshed["refreshed"] and set(refreshed["report"]["already_scored"]) >= {"christmas", "dinosaurs"}
    models = client.get("/api/models").json()
    assert models["champion"] == "embedding" and "embedding" in models["versions"]
    response = client.post("/api/models/rollback", headers=AUTH)
    assert response.status_code == 409 and "nothing to roll back" in response.json()["detail"]
    response = client.post("/api/models/promote", headers=AUTH, json={"version": "deadbeef0000"})
    assert response.status_code == 404
    same = client.post("/api/models/promote", headers=AUTH, json={"version": "embedding"}).json()
    assert same["promoted"] is False and "already champion" in same["reasons"][0]
    monitor = client.get("/api/monitor").json()
    assert monitor["decision"] == "ok" and monitor["checks"]["unscored_labels"] == []


def test_health_and_metrics(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "components": {"search": "ok", "trends": "ok", "classifier": "ok", "judgments": "ok"},
    }
    search(client, q="elf")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'freshrank_search_request_seconds_count{backend="sqlite",endpoint="/api/search"}' in metrics.text
    assert 'freshrank_search_requests_total{backend="sqlite",status="200"}' in metrics.text


def test_health_degraded_when_the_trend_store_is_down(tmp_path: Path, workbench_settings: Settings) -> None:
    # Nothing listens on port 1: a real refused connection, as when Redis is stopped.
    settings = make_settings(tmp_path, trend_store_url="redis://127.0.0.1:1/0?prefix=wb-test")
    settings.search_url = workbench_settings.resolved_search_url
    with TestClient(create_app(settings)) as degraded:
        body = degraded.get("/health").json()
        assert body["status"] == "degraded"
        assert body["components"]["trends"].startswith("degraded:")
        assert body["components"]["search"] == "ok"
        page = degraded.get("/api/search", params={"q": "elf"})
        assert page.status_code == 200 and page.json()["hits"][0]["title"] == "Elf"  # still answers
        assert degraded.get("/api/trends").status_code == 503


def test_refresh_answers_503_when_the_search_engine_is_down(
    tmp_path: Path, workbench_settings: Settings
) -> None:
    # Nothing listens on port 1: a real refused connection, as when OpenSearch is stopped (the soak's outage).
    settings = make_settings(tmp_path, search_url="opensearch://127.0.0.1:1/wb-test-down")
    settings.trend_store_url = workbench_settings.resolved_trend_store_url
    with TestClient(create_app(settings)) as no_engine:
        response = no_engine.post("/api/refresh", headers=AUTH)
        assert response.status_code == 503, response.text
        assert response.json()["detail"].startswith("refresh failed: OpenSearch")


def test_page_and_security_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "relevance workbench" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("app.js", "style.css", "favicon.svg"):
        assert client.get(f"/static/{asset}").status_code == 200
    script = client.get("/static/app.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script


def test_hostile_data_is_returned_as_data(client: TestClient) -> None:
    body = search(client, q="script", boost="false")
    assert body["hits"][0]["title"] == XSS_TITLE
    assert XSS_HASHTAG in [t["hashtag"] for t in client.get("/api/trends").json()]


def test_monitor_asks_to_reclassify_a_new_trend_until_refresh(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    build_state(settings)
    store = open_trend_store(settings.resolved_trend_store_url, settings.trends.ttl_seconds)
    store.replace(
        [*TRENDS, Trend(hashtag="#SharkWeek", label="shark week", score=7.0, count=90, baseline=3.0)]
    )
    with TestClient(create_app(settings)) as fresh:
        monitor = fresh.get("/api/monitor").json()
        assert monitor["decision"] == "reclassify"
        assert monitor["checks"]["unscored_labels"] == ["shark week"]
        assert any("shark week" in reason for reason in monitor["reasons"])
        refreshed = fresh.post("/api/refresh", headers=AUTH).json()["report"]
        assert refreshed["scored"] == ["shark week"]
        assert fresh.get("/api/monitor").json()["decision"] == "ok"
        assert "freshrank_monitor_decision 0.0" in fresh.get("/metrics").text


def test_search_answers_when_the_judgments_store_is_down(
    tmp_path: Path, workbench_settings: Settings
) -> None:
    # A real refused connection, as when MariaDB is stopped.
    settings = make_settings(
        tmp_path, judgments_url="mysql+pymysql://freshrank:freshrank@127.0.0.1:1/freshrank"
    )
    settings.search_url = workbench_settings.resolved_search_url
    settings.trend_store_url = workbench_settings.resolved_trend_store_url
    with TestClient(create_app(settings)) as no_judgments:
        page = no_judgments.get("/api/search", params=CHRISTMAS_FAMILY)
        assert page.status_code == 200 and page.json()["hits"]
        assert all(hit["grade"] is None for hit in page.json()["hits"])
        assert any("judgments store unavailable" in w for w in page.json()["warnings"])
        assert no_judgments.get("/api/query-metrics", params=CHRISTMAS_FAMILY).status_code == 503
        judged = {"query": "#christmas", "genre": "Family", "doc_id": 1, "grade": 1}
        response = no_judgments.post("/api/judgments", json=judged, headers=AUTH)
        assert response.status_code == 503 and "judgments store unavailable" in response.json()["detail"]
