"""scripts/services.sh meets a port another process holds: it names the port and the process, then either
stops (exit 3) or moves to a free port that it writes to ports.env; `status` shows ports and pids."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port a plain Python socket server listens on (not one of the checkout's servers)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _services(services_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FRESHRANK_SERVICES_DIR": str(services_dir), **env}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def _ports(services_dir: Path) -> dict[str, str]:
    lines = (services_dir / "ports.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.mark.redis
def test_a_taken_port_stops_with_the_port_and_the_process(tmp_path: Path, held_port: int) -> None:
    run = _services(
        tmp_path / "svc", "up", "redis", FRESHRANK_REDIS_PORT=str(held_port), FRESHRANK_PORT_CONFLICT="fail"
    )
    assert run.returncode == 3, run.stderr
    assert f"port {held_port} is taken by pid {os.getpid()}" in run.stderr
    assert "python" in run.stderr and "not this checkout's redis" in run.stderr
    status = _services(tmp_path / "svc", "status", "redis", FRESHRANK_REDIS_PORT=str(held_port))
    assert status.returncode == 1
    assert f"redis: down; port {held_port} is held by pid {os.getpid()}" in status.stdout


@pytest.mark.redis
def test_a_taken_port_moves_the_server_and_the_tests_read_where(tmp_path: Path, held_port: int) -> None:
    services_dir = tmp_path / "svc"
    run = _services(services_dir, "up", "redis", FRESHRANK_REDIS_PORT=str(held_port))
    try:
        assert run.returncode == 0, run.stderr
        port = int(_ports(services_dir)["FRESHRANK_REDIS_PORT"])
        assert port != held_port and f"using port {port} instead" in run.stderr
        assert _ports(services_dir)["FRESHRANK_TEST_REDIS_URL"] == f"redis://127.0.0.1:{port}/0"
        pid = (services_dir / "redis" / "redis.pid").read_text().strip()
        # Later calls take the saved port without being told.
        status = _services(services_dir, "status", "redis", FRESHRANK_REDIS_PORT="")
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.strip() == f"redis: up on 127.0.0.1:{port}, pid {pid}"
    finally:
        _services(services_dir, "down", "redis", FRESHRANK_REDIS_PORT="")
    assert _services(services_dir, "status", "redis", FRESHRANK_REDIS_PORT="").returncode == 1


def test_unknown_service_and_bad_port_are_usage_errors(tmp_path: Path) -> None:
    assert _services(tmp_path / "svc", "status", "nosuch").returncode == 2
    bad = _services(tmp_path / "svc", "status", "redis", FRESHRANK_REDIS_PORT="99999")
    assert bad.returncode == 2 and "FRESHRANK_REDIS_PORT must be a TCP port" in bad.stderr
