"""Private servers for benchmarks and fault tests: a free port, a throw-away redis-server of one's own (a
test or a soak that pauses or kills Redis must never touch the shared one)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(directory: Path, port: int, wait_s: float = 30.0) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:``port`` with no persistence, answering PING when this returns."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (bash scripts/install-system-deps.sh)")
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([binary, *args, "--dir", str(directory)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"redis-server on port {port} did not start") from None
            time.sleep(0.1)
        finally:
            client.close()
