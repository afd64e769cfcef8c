"""Private, killable servers for the fault tests: each test stops its OWN redis-server / OpenSearch / KServe
process, never the shared ones on the default ports that other tests use."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_OPENSEARCH = os.environ.get("FRESHRANK_TEST_OPENSEARCH", "127.0.0.1:9200")
PRIVATE_OPENSEARCH_PORT = int(os.environ.get("FRESHRANK_FAULT_OPENSEARCH_PORT", "9250"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {seconds:.0f} s")


@dataclass
class RedisServer:
    """A redis-server of our own on a free port (stopped with a real SHUTDOWN, restarted on demand)."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ping, 20, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
        return done.stdout.strip() == "PONG"

    def shutdown(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        if self.process is not None:
            self.process.wait(timeout=20)
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.shutdown()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    yield server
    server.stop()


class OpenSearchServer:
    """A second OpenSearch node of our own (scripts/opensearch.sh on another port), killed with SIGKILL."""

    def __init__(self, port: int, services_dir: Path) -> None:
        self.port = port
        self.services_dir = services_dir
        self.env = {
            **os.environ,
            "FRESHRANK_OPENSEARCH_PORT": str(port),
            "FRESHRANK_SERVICES_DIR": str(services_dir),
            "FRESHRANK_OPENSEARCH_HEAP_MIN": "256m",
            "FRESHRANK_OPENSEARCH_HEAP_MAX": "512m",
        }

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, command: str) -> None:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "opensearch.sh"), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"opensearch.sh {command} on port {self.port} failed:\n{done.stderr}"

    def pid(self) -> int:
        return int((self.services_dir / f"opensearch-{self.port}" / "opensearch.pid").read_text().strip())

    def kill(self) -> None:
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 30, f"OpenSearch pid {pid} to die")

    def healthy(self) -> bool:
        return httpx.get(f"http://{self.url}/_cluster/health", timeout=2).status_code == 200


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def private_opensearch() -> Iterator[OpenSearchServer]:
    # Its own, empty data dir (under the repo: the server's user cannot enter pytest's 0700 temp dirs).
    services_dir = ROOT / ".freshrank" / "services" / f"fault-{uuid.uuid4().hex[:8]}"
    server = OpenSearchServer(PRIVATE_OPENSEARCH_PORT, services_dir)
    try:
        server.script("up")
        yield server
    finally:
        server.script("down")
        shutil.rmtree(services_dir, ignore_errors=True)


@pytest.fixture
def index_name() -> str:
    return f"freshrank-fault-{uuid.uuid4().hex[:12]}"


def freshrank_bin() -> str:
    return str(Path(sys.executable).with_name("freshrank"))
