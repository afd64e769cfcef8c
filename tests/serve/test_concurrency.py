"""50 concurrent clients against the real `freshrank serve api` (issue 17, item 7): every search is answered,
each answer equals the one a lone client gets, and judgments written meanwhile are all stored. Speed is
measured in `make bench` (section concurrency), not asserted here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from freshrank.config import Settings
from freshrank.evaluate.store import open_judgment_store
from tests.serve.conftest import TOKEN

QUERIES = [
    {"q": q, "genre": g, "offset": o}
    for q in ("", "christmas", "boy train", "santa home")
    for g in ("", "Family")
    for o in (0, 5)
]
CLIENTS = 50


def _answer(body: dict[str, Any]) -> list[tuple[int, float]]:
    return [(hit["id"], round(hit["score"], 9)) for hit in body["hits"]]


def test_fifty_clients_get_the_answers_one_client_gets(
    live_server: tuple[str, object], workbench_settings: Settings
) -> None:
    base, _ = live_server
    with httpx.Client(base_url=base, timeout=120) as http:
        alone = [_answer(http.get("/api/search", params=q).json()) for q in QUERIES]

    def client(seed: int) -> list[tuple[int, list[tuple[int, float]]]]:
        seen = []
        with httpx.Client(base_url=base, timeout=120) as http:
            for i in range(len(QUERIES)):
                n = (seed + i) % len(QUERIES)
                response = http.get("/api/search", params=QUERIES[n])
                seen.append((response.status_code, _answer(response.json()) if response.is_success else []))
                if seed < 10 and i < 4:  # ten of them also judge while everybody searches
                    body = {"query": "#concurrency", "genre": "", "doc_id": seed * 10 + i, "grade": i % 4}
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    assert http.post("/api/judgments", json=body, headers=headers).status_code == 200
        return seen

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    for seed, seen in enumerate(results):
        assert [status for status, _ in seen] == [200] * len(QUERIES)
        assert [answer for _, answer in seen] == [
            alone[(seed + i) % len(QUERIES)] for i in range(len(QUERIES))
        ]
    store = open_judgment_store(workbench_settings.resolved_judgments_url)
    stored = {j.doc_id: j.grade for j in store.judgments(trend="#concurrency")}
    store.close()
    assert stored == {seed * 10 + i: i % 4 for seed in range(10) for i in range(4)}
