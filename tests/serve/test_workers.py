"""`freshrank serve api --workers 2`: both processes answer, metrics add up over them, and what each process
keeps in memory (grades, the serving model) follows writes made through the other one. Speed is measured in
`make bench` (section concurrency), not here."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import psutil

from freshrank.config import Settings
from freshrank.serve.workbench import CHAMPION_CHECK_SECONDS, QRELS_TTL_SECONDS, Workbench
from tests.serve.conftest import LIVE_WORKERS, TOKEN, make_settings

SEARCH = {"q": "christmas", "genre": "Family", "trend": "#christmas"}


def _served(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    found = re.findall(r'^freshrank_search_requests_total\{[^}]*status="200"[^}]*\} (\S+)$', text, re.M)
    return sum(float(value) for value in found)


def _workers(base: str) -> list[psutil.Process]:
    """The worker processes of the `freshrank serve api` listening on ``base``'s port (its spawned children,
    not multiprocessing's resource tracker)."""
    port = base.rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "serve" in cmdline and "--port" in cmdline and port in cmdline:
            children = [(child, " ".join(child.cmdline())) for child in process.children()]
            return [child for child, line in children if "spawn_main" in line]
    raise AssertionError(f"no `freshrank serve api` on {base}")


def test_several_processes_answer_and_metrics_add_up(live_server: tuple[str, Path]) -> None:
    base, _ = live_server
    before = _served(base)
    for _ in range(40):  # a new connection each time: the kernel spreads them over the processes
        assert httpx.get(f"{base}/api/search", params=SEARCH, timeout=60).status_code == 200
    assert _served(base) - before == 40
    assert len(_workers(base)) == LIVE_WORKERS


def test_a_grade_saved_through_one_process_shows_in_all(live_server: tuple[str, Path]) -> None:
    base, _ = live_server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    search = {**SEARCH, "q": "christmas workers"}  # judged under its text, a query no other test judges
    first = httpx.get(f"{base}/api/search", params=search, timeout=60).json()["hits"][0]
    grade = 1 if first["grade"] != 1 else 2
    body = {"query": search["q"], "genre": "Family", "doc_id": first["id"], "grade": grade}
    assert httpx.post(f"{base}/api/judgments", json=body, headers=headers, timeout=60).status_code == 200
    time.sleep(QRELS_TTL_SECONDS + 0.2)  # the other process's cached grades have expired by now
    for _ in range(12):  # new connections: both processes answer some of these
        hits = httpx.get(f"{base}/api/search", params=search, timeout=60).json()["hits"]
        assert {h["id"]: h["grade"] for h in hits}[first["id"]] == grade


def test_a_process_follows_a_champion_changed_by_another(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path)
    wb = Workbench(settings)
    try:
        loop = wb.loop
        assert wb.loop is loop
        champion = settings.resolved_registry_dir / "champion.json"
        champion.parent.mkdir(parents=True, exist_ok=True)
        champion.write_text(json.dumps({"champion": "embedding", "history": []}))  # as a rollback would
        time.sleep(CHAMPION_CHECK_SECONDS + 0.1)
        assert wb.loop is not loop
        reopened = wb.loop
        time.sleep(CHAMPION_CHECK_SECONDS + 0.1)
        assert wb.loop is reopened  # unchanged file: the service stays
    finally:
        wb.close()
