"""The benches' load generator (``bench/load.py``): wrk through its Lua script, against a real server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from freshrank.bench.load import run_wrk, script, wrk_missing, wrk_path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = b"{}"
        self.send_response(500 if self.path.startswith("/fail") else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    if wrk_path() is None:
        pytest.fail(wrk_missing())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_counts_requests_and_errors(base: str) -> None:
    ok = run_wrk(base, ["/ok?q=a", "/ok?q=b"], connections=2, seconds=1)
    assert ok["requests"] > 0 and ok["errors"] == 0
    assert 0 < ok["p50_ms"] <= ok["p99_ms"]
    mixed = run_wrk(base, ["/ok", "/fail"], connections=2, seconds=1)
    assert 0 < mixed["errors"] < mixed["requests"]  # about half the answers are 500s


def test_paced_clients_wait_and_the_wait_is_not_latency(base: str) -> None:
    paced = run_wrk(base, ["/ok"], connections=2, seconds=2, think_ms=(400, 500))
    assert 2 <= paced["requests"] <= 2 * 2 / 0.4 + 2  # each client waits 0.4-0.5 s before every request
    assert paced["p50_ms"] < 400


def test_only_plain_paths_go_into_the_script() -> None:
    assert '"/api/search?q=love+story"' in script(["/api/search?q=love+story"])
    for bad in ('/x"); os.exit(1) --', "/a\\b", "no-slash"):
        with pytest.raises(ValueError, match="not a plain request path"):
            script([bad])
