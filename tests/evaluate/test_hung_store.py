"""A paused judgments database, not a dead one: the real MariaDB and PostgreSQL behind a TCP relay (socat)
that the test pauses with SIGSTOP (pausing the shared servers would stall every other test). One call waits
for the timeout, then the circuit is open and calls fail at once; when the server answers again, a trial call
closes the circuit and the store works as before."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from freshrank.config import JudgmentStoreSettings
from freshrank.evaluate import Judgment, StoreUnavailable, open_judgment_store
from freshrank.evaluate.store import SqlJudgmentStore
from tests.evaluate.test_store import SERVER_URLS
from tests.relay import Relay, relay_to

SERVERS = [
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
# 3 s: live calls must not time out on a loaded box; reset 10 s: every check of the open circuit below falls
# inside one open period however slowly it runs.
LIMITS = JudgmentStoreSettings(connect_timeout_seconds=2, timeout_seconds=3, breaker_reset_seconds=10)
CHRISTMAS = Judgment("#christmas", "Family", 771, 3)


def relayed_url(server: str, relay: Relay) -> str:
    """The server's test URL with the relay's address instead of the server's."""
    url = make_url(SERVER_URLS[server])
    host, port = relay.address.split(":")
    return url.set(host=host, port=int(port)).render_as_string(hide_password=False)


def server_address(server: str) -> str:
    url = make_url(SERVER_URLS[server])
    return f"{url.host}:{url.port}"


@pytest.fixture(params=SERVERS)
def hung(request: pytest.FixtureRequest) -> Iterator[tuple[Relay, str, str]]:
    """(a relay to the server, the store's URL through it, a fresh table prefix)."""
    server = request.param
    prefix = f"h{uuid.uuid4().hex[:10]}_"
    with relay_to(server_address(server)) as relay:
        yield relay, relayed_url(server, relay), prefix
    direct = open_judgment_store(SERVER_URLS[server], table_prefix=prefix)
    direct.drop()
    direct.close()


def until_closed(store: SqlJudgmentStore) -> list[Judgment]:
    """The stored judgments, once a trial call has closed the circuit again (tried for 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return store.judgments()
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the circuit never closed again"
            time.sleep(0.2)


def test_a_paused_database_costs_one_timeout_then_the_circuit_is_open(hung: tuple[Relay, str, str]) -> None:
    relay, url, prefix = hung
    store = open_judgment_store(url, table_prefix=prefix, limits=LIMITS)
    store.add([CHRISTMAS], who="alice")
    relay.pause()
    with pytest.raises(StoreUnavailable, match="unavailable") as first:
        store.add([Judgment("#christmas", "Family", 772, 1)], who="alice")  # the one call that waits
    assert "not retried yet" not in str(first.value)
    for call in (store.judgments, store.changes, store.runs):
        with pytest.raises(StoreUnavailable, match="circuit open, not retried yet: judgments store"):
            call()  # not tried at all
    # Another store on the same server (a reopened store, another request) shares the breaker: it fails at
    # once too, before its migration.
    with pytest.raises(StoreUnavailable, match="not retried yet"):
        open_judgment_store(url, table_prefix=prefix, limits=LIMITS)
    relay.resume()
    # After the reset time one trial call goes through and closes the circuit; the add that timed out was
    # rolled back (its connection died before the commit), and sending it again stores it.
    assert until_closed(store) == [CHRISTMAS]
    assert store.add([Judgment("#christmas", "Family", 772, 1)], who="alice").added == 1
    assert len(store.judgments()) == 2
    store.close()


def test_a_restarted_server_is_no_hang_and_a_dead_one_fails_fast(hung: tuple[Relay, str, str]) -> None:
    relay, url, prefix = hung
    store = open_judgment_store(url, table_prefix=prefix, limits=LIMITS)
    store.add([CHRISTMAS], who="alice")
    with pytest.raises(ValueError):
        store.add([Judgment("#x", "", 1, 9)])  # refused before the server is asked: no server failure
    relay.stop()
    relay.start()  # the pooled connection's socket is closed: the pool's ping finds it dead and reconnects
    assert store.judgments() == [CHRISTMAS]
    assert store.breaker is not None and store.breaker.current_state == "closed"
    relay.stop()  # nothing listens: refused at once, and the circuit opens
    with pytest.raises(StoreUnavailable, match="unavailable"):
        store.judgments()
    with pytest.raises(StoreUnavailable, match="not retried yet"):
        store.judgments()
    store.close()


@pytest.mark.mariadb
def test_a_server_lost_in_the_middle_of_an_import_exits_3(tmp_path: Path) -> None:
    """``freshrank judgments import`` whose database goes away after the store opened: exit 3 with the reason,
    and nothing of the import is stored (one transaction)."""
    csv = tmp_path / "many.csv"
    rows = (f"#bulk{i % 40},,{i},{i % 4}" for i in range(1, 120_001))
    csv.write_text("trend,genre,doc_id,grade\n" + "\n".join(rows) + "\n")
    prefix = f"c{uuid.uuid4().hex[:10]}_"
    try:
        with relay_to(server_address("mariadb")) as relay:
            env = {
                **os.environ,
                "FRESHRANK_STATE_DIR": str(tmp_path / "state"),
                "FRESHRANK_JUDGMENTS_URL": relayed_url("mariadb", relay),
                "FRESHRANK_JUDGMENTS_STORE__TABLE_PREFIX": prefix,
                "PYTHONPATH": os.pathsep.join(sys.path),
            }
            command = [sys.executable, "-m", "freshrank.cli", "judgments", "import", str(csv), "--who", "t"]
            importer = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 120
            while not _migrated(prefix):  # the import has opened the store: its migration is committed
                assert importer.poll() is None, importer.stderr.read() if importer.stderr else ""
                assert time.monotonic() < deadline, "the import never reached the database"
                time.sleep(0.05)
            relay.stop()  # the server is gone for the importer: every connection reset
            _, stderr = importer.communicate(timeout=120)
        assert importer.returncode == 3, stderr
        assert "judgments store" in stderr and "unavailable" in stderr
    finally:
        direct = open_judgment_store(SERVER_URLS["mariadb"], table_prefix=prefix)
        assert direct.judgments() == []
        direct.drop()
        direct.close()


def _migrated(prefix: str) -> bool:
    """Whether the store with ``prefix`` has its schema version committed."""
    import sqlalchemy as sa

    engine = sa.create_engine(SERVER_URLS["mariadb"])
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(f"SELECT version_num FROM {prefix}alembic_version")).first())
    except sa.exc.ProgrammingError:  # no such table yet
        return False
    finally:
        engine.dispose()
