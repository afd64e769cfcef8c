"""A TCP relay (socat) in front of a real server, that a fault test pauses (SIGSTOP): to the client the server
hangs (connections open, no answer), while the shared server itself keeps serving every other test. Stopping
the relay is a dead server (connections refused); restarting it, a server that restarted (pooled connections
find their socket closed)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from freshrank.bench.servers import free_port


class Relay:
    """A socat relay on 127.0.0.1:``port`` (``address``) to ``target`` (host:port)."""

    def __init__(self, target: str) -> None:
        self.target, self.port = target, free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        socat = shutil.which("socat")
        if socat is None:
            pytest.fail("socat is not installed (bash scripts/install-system-deps.sh)")
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
            with suppress(ProcessLookupError):  # it already ended
                os.killpg(self.process.pid, number)


@contextmanager
def relay_to(target: str) -> Iterator[Relay]:
    """A running relay to ``target`` (host:port), stopped on exit."""
    relay = Relay(target)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
