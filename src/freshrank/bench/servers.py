"""Private servers for benchmarks and fault tests: a free port, a throw-away redis-server of one's own (a
test or a soak that pauses or kills Redis must never touch the shared one), and a TCP relay (socat) in front
of a shared server: pausing the relay is a hung server, stopping it a dead one, starting it again a server
that restarted, while the shared server itself keeps serving everybody else."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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


class Relay:
    """A socat relay on 127.0.0.1:``port`` (``address``) to ``target`` (host:port)."""

    def __init__(self, target: str) -> None:
        self.target, self.port = target, free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Listen (again, on the same port) and forward every connection, each in its own forked process."""
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (bash scripts/install-system-deps.sh)")
        self.process = subprocess.Popen(
            [socat, f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork", f"TCP:{self.target}"],
            start_new_session=True,  # its own process group: a signal reaches every forked connection
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """Close every relayed connection and the port."""
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self._signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def _signal(self, number: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # it already ended
                os.killpg(self.process.pid, number)
