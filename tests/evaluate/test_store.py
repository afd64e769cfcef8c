"""The judgments store on SQLite and the real MariaDB and PostgreSQL (scripts/services.sh up mariadb
postgres); file round trips."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from freshrank.evaluate import Judgment, StoreUnavailable, open_judgment_store
from freshrank.evaluate.base import ConflictError, EvaluationRun
from freshrank.evaluate.io import judgments_to_text, read_csv, read_judgments, read_qrels, read_quepid
from freshrank.evaluate.store import SqlJudgmentStore, validate

MARIADB_URL = os.environ.get(
    "FRESHRANK_TEST_MARIADB_URL", "mysql+pymysql://freshrank:freshrank@127.0.0.1:3306/freshrank_test"
)
POSTGRES_URL = os.environ.get(
    "FRESHRANK_TEST_POSTGRES_URL", "postgresql+psycopg://freshrank:freshrank@127.0.0.1:5432/freshrank_test"
)
SERVER_URLS = {"mariadb": MARIADB_URL, "postgres": POSTGRES_URL}

HOSTILE = "#'; DROP TABLE judgments; --"
SAMPLE = [
    Judgment("#christmas", "", 345, 1),
    Judgment("#christmas", "Family", 771, 3),
    Judgment("#christmas", "Family", 772, 0),
    Judgment("#Christmas", "", 345, 2),  # case matters (binary collation on MariaDB)
    Judgment("#zombies", "Science Fiction", 9, 1),
    Judgment(HOSTILE, "", 1, 1),
    Judgment("#寿司", "Animation", 12, 2),
]


BACKENDS = [
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def _url(backend: str, tmp_path: Path, name: str = "j.db") -> str:
    return f"sqlite:///{tmp_path / name}" if backend == "sqlite" else SERVER_URLS[backend]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlJudgmentStore]:
    prefix = f"t{uuid.uuid4().hex[:10]}_"  # concurrent test runs share the server databases
    try:
        opened = open_judgment_store(_url(request.param, tmp_path), table_prefix=prefix)
    except StoreUnavailable as exc:
        pytest.fail(f"{request.param} must be running (bash scripts/services.sh up {request.param}): {exc}")
    yield opened
    opened.drop()
    opened.close()


def test_add_and_read_back_everything(store: SqlJudgmentStore) -> None:
    result = store.add(SAMPLE, who="alice", source="sample.csv")
    assert (result.added, result.changed, result.unchanged) == (len(SAMPLE), 0, 0)
    assert sorted(store.judgments(), key=lambda j: j.key) == sorted(SAMPLE, key=lambda j: j.key)
    assert store.judgments(trend=HOSTILE) == [Judgment(HOSTILE, "", 1, 1)]
    assert {j.doc_id for j in store.judgments(trend="#christmas", genre="Family")} == {771, 772}


def test_reimport_keeps_every_change_with_who_and_when(store: SqlJudgmentStore) -> None:
    store.add(SAMPLE, who="alice")
    again = store.add(SAMPLE, who="alice")
    assert (again.added, again.changed, again.unchanged) == (0, 0, len(SAMPLE))
    changed = store.add([Judgment("#christmas", "Family", 771, 1), Judgment("#new", "", 5, 2)], who="bob")
    assert (changed.added, changed.changed) == (1, 1)
    assert changed.conflicts == [(Judgment("#christmas", "Family", 771, 1), 3)]
    trail = store.changes(trend="#christmas", genre="Family", doc_id=771)
    assert [(c.old_grade, c.new_grade, c.who) for c in trail] == [(None, 3, "alice"), (3, 1, "bob")]
    assert trail[0].at <= trail[1].at
    assert store.judgments(trend="#christmas", genre="Family")[0].grade == 1


def test_keep_and_fail_never_overwrite(store: SqlJudgmentStore) -> None:
    store.add(SAMPLE, who="alice")
    kept = store.add([Judgment("#christmas", "", 345, 3)], who="bob", on_conflict="keep")
    assert (kept.kept, kept.changed) == (1, 0)
    with pytest.raises(ConflictError, match="nothing written"):
        store.add([Judgment("#brand-new", "", 1, 1), Judgment("#christmas", "", 345, 3)], on_conflict="fail")
    assert store.judgments(trend="#brand-new") == []  # the whole batch was refused
    assert store.judgments(trend="#christmas", genre="")[0].grade == 1


def test_remove_is_recorded(store: SqlJudgmentStore) -> None:
    store.add(SAMPLE, who="alice")
    assert store.remove("#zombies", "Science Fiction", 9, who="carol")
    assert not store.remove("#zombies", "Science Fiction", 9)
    assert store.changes(trend="#zombies")[-1].new_grade is None
    assert store.judgments(trend="#zombies") == []


def test_bad_judgments_are_refused_whole(store: SqlJudgmentStore) -> None:
    with pytest.raises(ValueError, match="longer than 255"):
        store.add([Judgment("#ok", "", 1, 1), Judgment("#" + "x" * 10_000, "", 1, 1)])
    with pytest.raises(ValueError, match="empty trend"):
        store.add([Judgment("  ", "", 1, 1)])
    assert store.judgments() == []


def test_runs_are_stored_in_order(store: SqlJudgmentStore) -> None:
    for value in (0.5, 0.25):
        run = EvaluationRun("evaluate", "embedding", "v1", 10, {"k": 10}, ["#a"], {"ndcg@10": value})
        run.per_query = {"#a|": {"ndcg@10": value}}
        store.record_run(run)
    store.record_run(EvaluationRun("compare", "a vs b", "v1", 10, {}, ["#a"], {}, details={"p": 0.04}))
    runs = store.runs(kind="evaluate")
    assert [r.mean["ndcg@10"] for r in runs] == [0.5, 0.25]
    assert runs[0].per_query == {"#a|": {"ndcg@10": 0.5}}
    assert runs[0].created_at is not None and runs[0].id is not None
    assert store.runs(kind="compare")[0].details == {"p": 0.04}
    assert [r.mean["ndcg@10"] for r in store.runs(kind="evaluate", limit=1)] == [0.25]


def test_prune_deletes_old_runs_and_changes_never_judgments(store: SqlJudgmentStore) -> None:
    from datetime import UTC, datetime, timedelta

    old, new = datetime(2020, 1, 1), datetime(2026, 1, 1)
    for created in (old, new):
        store.record_run(EvaluationRun("evaluate", "e", "v1", 10, {}, ["#a"], {}, created_at=created))
    store.add([Judgment("#a", "", 1, 1)], who="alice")
    store.add([Judgment("#a", "", 1, 2)], who="bob")
    assert len(store.changes()) == 2
    cut = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=5)  # every change is older than this
    freed = store.prune(runs_before=datetime(2025, 1, 1), changes_before=cut)
    assert freed == {"evaluation_runs": 1, "judgment_changes": 2}
    assert [r.created_at for r in store.runs()] == [new]
    assert store.changes() == [] and store.judgments() == [Judgment("#a", "", 1, 2)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_are_shipped_and_idempotent(tmp_path: Path, backend: str) -> None:
    url = _url(backend, tmp_path, "m.db")
    prefix = f"m{uuid.uuid4().hex[:10]}_"
    first = open_judgment_store(url, table_prefix=prefix)
    try:
        first.add([Judgment("#a", "", 1, 1)])
        reopened = open_judgment_store(url, table_prefix=prefix)  # migrating a current schema changes nothing
        assert reopened.judgments() == [Judgment("#a", "", 1, 1)]
        with reopened.engine.connect() as conn:
            version = conn.execute(sa.text(f"SELECT version_num FROM {prefix}alembic_version")).scalar()
        assert version == "0001"
        reopened.close()
    finally:
        first.drop()
        first.close()


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreUnavailable, match=r"unavailable.*\*\*\*|\*\*\*.*unavailable"):
        open_judgment_store("mysql+pymysql://freshrank:secret@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match="bad judgments store URL"):
        open_judgment_store("not a url")


# Files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "qrels", "quepid"])
def test_file_round_trip_through_the_store(store: SqlJudgmentStore, fmt: str, tmp_path: Path) -> None:
    store.add(SAMPLE, who="alice")
    path = tmp_path / f"out.{'qrels' if fmt == 'qrels' else 'csv'}"
    path.write_text(judgments_to_text(store.judgments(), fmt), encoding="utf-8")  # type: ignore[arg-type]
    parsed = read_judgments(path)  # the format is recognised from the name and header
    assert parsed.errors == []
    assert sorted(parsed.judgments, key=lambda j: j.key) == sorted(SAMPLE, key=lambda j: j.key)
    assert store.add(parsed.judgments, who="alice").unchanged == len(SAMPLE)


def test_shared_judgments_import_losslessly(store: SqlJudgmentStore, shared_data: Path) -> None:
    parsed = read_judgments(shared_data / "judgments" / "talk_family_christmas.csv")
    assert parsed.errors == [] and len(parsed.judgments) == 24
    store.add(parsed.judgments)
    assert judgments_to_text(store.judgments(), "csv").count("\n") == 25


def test_bad_lines_are_reported_with_numbers_and_skipped() -> None:
    text = "trend,genre,doc_id,grade\n#a,,1,1\n#b,,x,1\n#c,,2,1.5\n,,3,1\n#d,,4,2\n#a,,1,3\n"
    parsed = read_csv(io.StringIO(text))
    assert [j.trend for j in parsed.judgments] == ["#a", "#d"] and parsed.judgments[0].grade == 3
    assert parsed.duplicates == 1
    assert [e.split(":")[0] for e in parsed.errors] == ["line 3", "line 4", "line 5"]
    qrels = read_qrels(io.StringIO("1 0 10 2\nbroken line\n%23a%7Cb|Science%20Fiction 0 7 1\n"))
    assert qrels.judgments == [Judgment("1", "", 10, 2), Judgment("#a|b", "Science Fiction", 7, 1)]
    assert qrels.errors and qrels.errors[0].startswith("line 2")
    quepid = read_quepid(io.StringIO("query,docid,rating\n#christmas|Family,5,2.0\n#halloween,6,1\n"))
    assert quepid.judgments == [Judgment("#christmas", "Family", 5, 2), Judgment("#halloween", "", 6, 1)]
    with pytest.raises(ValueError, match="header"):
        read_csv(io.StringIO("a,b\n1,2\n"))


def test_grades_outside_0_to_3_ids_out_of_range_and_extra_cells_are_bad_lines() -> None:
    text = "trend,genre,doc_id,grade\n#a,,1,9\n#a,,2,-1\n#a,,3,2,extra\n#a,,9223372036854775808,1\n#ok,,4,3\n"
    parsed = read_csv(io.StringIO(text))
    assert parsed.judgments == [Judgment("#ok", "", 4, 3)]
    errors = {int(e.split(":")[0].split()[1]): e for e in parsed.errors}
    assert sorted(errors) == [2, 3, 4, 5]
    assert "grade must be an integer in 0..3" in errors[2] and "0..3" in errors[3]
    assert "1 more cell(s) than the header" in errors[4]
    assert "doc_id must be an integer in 0..2^63-1" in errors[5]
    quepid = read_quepid(io.StringIO("query,docid,rating\n#a,5,4\n#a,6,1,x\n#a,7,0\n"))
    assert quepid.judgments == [Judgment("#a", "", 7, 0)] and len(quepid.errors) == 2
    with pytest.raises(ValueError, match="0..3"):
        validate(Judgment("#a", "", 1, 7))
