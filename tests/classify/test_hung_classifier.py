"""A paused (SIGSTOP) `freshrank serve classifier`, not a dead one: one call waits for the timeout, then the
circuit is open and calls fail at once; search answers with a warning; refresh fails with exit code 3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshrank.classify.remote import CircuitOpen, ClassifierUnavailable, RemoteClassifier
from freshrank.config import Settings
from freshrank.loop.service import ScoringLoop
from tests.serve.test_kserve_server import free_port, start_server, stop, wait_ready


@pytest.fixture
def paused_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A classifier server of this test's own (the embedding classifier), paused once it has answered."""
    port = free_port()
    proc = start_server(tmp_path / "server-state", port, {"FRESHRANK_CLASSIFIER__NAME": "embedding"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url, proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        stop(proc)


def _settings(tmp_path: Path, url: str) -> Settings:
    settings = Settings(state_dir=tmp_path / "state")
    settings.classifier.url = url
    settings.classifier.timeout_seconds = 0.5
    settings.classifier.score_timeout_seconds = 1.0
    settings.classifier.breaker_reset_seconds = 1.0
    return settings


def test_a_paused_classifier_server_costs_one_timeout_then_the_circuit_is_open(
    paused_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, proc = paused_server
    settings = _settings(tmp_path, url)
    assert RemoteClassifier(url, settings=settings).version.startswith("embedding")
    os.kill(proc.pid, signal.SIGSTOP)
    client = RemoteClassifier(url, settings=settings)
    with pytest.raises(ClassifierUnavailable, match="did not answer within 0.5 s") as first:
        client.version  # noqa: B018 - the one call that waits (and is not retried)
    assert not isinstance(first.value, CircuitOpen)
    for _ in range(3):
        with pytest.raises(CircuitOpen, match="not retried yet"):
            RemoteClassifier(url, settings=settings).version  # noqa: B018 - another client, same breaker
    os.kill(proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while True:  # after the reset time one trial call goes through and closes the circuit
        try:
            assert client.version.startswith("embedding")
            break
        except CircuitOpen:
            assert time.monotonic() < deadline, "the circuit never closed again"
            time.sleep(0.2)


def test_search_and_refresh_with_a_paused_classifier_server(
    paused_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path, small_catalog_file: Path
) -> None:
    url, proc = paused_server
    settings = _settings(tmp_path, url)
    ScoringLoop.from_settings(settings).load(small_catalog_file)
    os.kill(proc.pid, signal.SIGSTOP)
    loop = ScoringLoop.from_settings(settings)
    pages = [loop.reader.search("christmas", hashtags=["#christmas"]) for _ in range(3)]
    assert all(page.hits and page.hits[0].title == "Home Alone" for page in pages)
    assert "did not answer" in " ".join(pages[0].warnings)
    assert all("not retried yet" in " ".join(page.warnings) for page in pages[1:])
    assert loop.health()["classifier"] == "ok"  # loaded; its server's state shows in the searches' warnings

    env = {
        **os.environ,
        "FRESHRANK_STATE_DIR": str(settings.state_dir),
        "FRESHRANK_CLASSIFIER__URL": url,
        "FRESHRANK_CLASSIFIER__TIMEOUT_SECONDS": "0.5",
        "FRESHRANK_CLASSIFIER__SCORE_TIMEOUT_SECONDS": "1",
    }
    refresh = subprocess.run(
        [sys.executable, "-m", "freshrank.cli", "refresh", "--trend", "#christmas", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert refresh.returncode == 3, refresh.stderr
    assert "did not answer within" in refresh.stdout
