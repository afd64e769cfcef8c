"""A small but real workbench: catalogue, trends, judgments and trend scores from the embedding classifier.

The state is built once per test session under a temp dir. API tests talk to ``create_app`` in-process;
browser tests start the real ``freshrank serve api`` command in a subprocess and drive Chromium at it.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from freshrank.config import Settings
from freshrank.evaluate.base import Judgment
from freshrank.evaluate.store import open_judgment_store
from freshrank.loop.service import ScoringLoop
from freshrank.trends import Trend, open_trend_store
from tests.conftest import SMALL_MOVIES

TOKEN = "wb-test-token-7f3a9c"
LIVE_WORKERS = 2  # the live server runs as several processes, as in production
XSS_TITLE = "<script>window.__xss=1</script>"
XSS_HASHTAG = "#<img src=x onerror=window.__xss2=1>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

EXTRA_MOVIES: list[dict[str, object]] = [
    {
        "id": 101,
        "title": "The Santa Clause",
        "overview": "A divorced dad accidentally becomes Santa Claus and must "
        "deliver presents on Christmas Eve.",
        "genres": ["Comedy", "Family", "Fantasy"],
        "release_year": 1994,
    },
    {
        "id": 102,
        "title": "Jingle All the Way",
        "overview": "A workaholic father hunts for the sold-out toy his son wants for Christmas.",
        "genres": ["Comedy", "Family"],
        "release_year": 1996,
    },
    {
        "id": 103,
        "title": "Arthur Christmas",
        "overview": "Santa's clumsy son races to deliver one forgotten "
        "present before dawn on Christmas morning.",
        "genres": ["Animation", "Family"],
        "release_year": 2011,
    },
    {
        "id": 104,
        "title": "Toy Story",
        "overview": "A cowboy doll feels threatened when a new spaceman toy "
        "becomes the favourite in a boy's room.",
        "genres": ["Animation", "Family", "Comedy"],
        "release_year": 1995,
    },
    {
        "id": 105,
        "title": "The Lion King",
        "overview": "A young lion prince flees his kingdom after his "
        "father's death and must return to claim his place.",
        "genres": ["Animation", "Family", "Drama"],
        "release_year": 1994,
    },
    {
        "id": 106,
        "title": "Paddington",
        "overview": "A polite bear from Peru travels to London in search of a home and finds a family.",
        "genres": ["Comedy", "Family"],
        "release_year": 2014,
    },
    {
        "id": 107,
        "title": "Babe",
        "overview": "A pig raised by sheepdogs learns to herd sheep on a farm.",
        "genres": ["Comedy", "Family", "Drama"],
        "release_year": 1995,
    },
    {
        "id": 108,
        "title": "The Incredibles",
        "overview": "A family of undercover superheroes is forced back into action to save the world.",
        "genres": ["Animation", "Family", "Action"],
        "release_year": 2004,
    },
    {
        "id": 109,
        "title": "The Land Before Time",
        "overview": "An orphaned young dinosaur and his friends journey to the Great Valley.",
        "genres": ["Animation", "Family", "Adventure"],
        "release_year": 1988,
    },
    {
        "id": 110,
        "title": XSS_TITLE,
        "overview": "A screenwriter's cursed script turns into a horror show on Christmas night.",
        "genres": ["Horror"],
        "release_year": 2020,
    },
]

TRENDS = [
    Trend(
        hashtag="#christmas",
        label="christmas",
        score=9.5,
        count=420,
        baseline=30.0,
        history=(3, 4, 5, 4, 6, 8, 12, 20, 35, 60, 90, 140),
    ),
    Trend(
        hashtag="#dinosaurs",
        label="dinosaurs",
        score=5.2,
        count=120,
        baseline=20.0,
        history=(10, 9, 11, 12, 10, 14, 18, 22, 30, 40, 45, 50),
    ),
    Trend(
        hashtag=XSS_HASHTAG,
        label="image error",
        score=1.1,
        count=12,
        baseline=8.0,
        history=(2, 1, 3, 2, 2, 1, 2, 3, 2, 1, 2, 3),
    ),
]

# "#christmas" while filtering to Family: the talk's demo query, partly judged in advance.
SEEDED = {2: 3, 8: 3, 101: 3, 103: 2, 5: 0, 104: 0}


def write_catalog(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in [*SMALL_MOVIES, *EXTRA_MOVIES]:
            fh.write(json.dumps(row) + "\n")
    return path


# Stored trend scores keep what stands out by more than CALIBRATION_Z standard deviations over the catalogue;
# the default (2.0) suits 12,000 movies, while in 18 movies the 7 Christmas films are not outliers.
CALIBRATION_Z = 0.5


def make_settings(root: Path, token: str = TOKEN, **overrides: object) -> Settings:
    return Settings(
        data_dir=root / "data",
        state_dir=root / "state",
        serve={"api_token": token},
        search={"calibration_z": CALIBRATION_Z},
        **overrides,
    )


def build_state(settings: Settings) -> None:
    """Index the catalogue, publish trends, seed judgments, score the trends with the real classifier."""
    write_catalog(settings.movies_path)
    service = ScoringLoop.from_settings(settings)
    service.load()
    open_trend_store(settings.resolved_trend_store_url, settings.trends.ttl_seconds).replace(TRENDS)
    store = open_judgment_store(settings.resolved_judgments_url)
    store.add(
        [Judgment("#christmas", "Family", doc, grade) for doc, grade in SEEDED.items()], who="test-seed"
    )
    store.close()
    report = service.refresh()
    assert not report.failed, report.failed


@pytest.fixture(scope="session")
def workbench_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = make_settings(tmp_path_factory.mktemp("workbench"))
    build_state(settings)
    return settings


# The installed console script, as a user runs it (the same entry point without it).
_SCRIPT = Path(sys.executable).with_name("freshrank")
FRESHRANK = (
    [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from freshrank.cli import main; main()"]
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`freshrank serve api` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"`freshrank serve api` did not come up in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_server(workbench_settings: Settings) -> Iterator[tuple[str, Path]]:
    """The real CLI, ``freshrank serve api`` with ``LIVE_WORKERS`` server processes, on a free port of
    127.0.0.1; yields (base URL, server log)."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "workbench-server.log"
    env = {
        **os.environ,
        "FRESHRANK_CONFIG": str(workbench_settings.state_dir / "no-such-config.toml"),
        "FRESHRANK_DATA_DIR": str(workbench_settings.data_dir),
        "FRESHRANK_STATE_DIR": str(workbench_settings.state_dir),
        "FRESHRANK_SERVE__API_TOKEN": TOKEN,
        "FRESHRANK_SEARCH__CALIBRATION_Z": str(CALIBRATION_Z),
        "HF_HUB_OFFLINE": "1",
    }
    command = [*FRESHRANK, "serve", "api", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(LIVE_WORKERS)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
