"""Named ranking snapshots: the SQLite store and the diff, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshrank.serve.snapshots import (
    RankedDoc,
    Snapshot,
    SnapshotExists,
    SnapshotNotFound,
    SnapshotQuery,
    SnapshotStore,
    diff_rankings,
)


def ranking(*ids: int) -> list[RankedDoc]:
    return [RankedDoc(doc_id=i, title=f"movie {i}", score=1.0 / rank) for rank, i in enumerate(ids, start=1)]


def test_diff_names_moved_new_dropped_and_same() -> None:
    moves = {m.doc_id: m for m in diff_rankings(ranking(1, 2, 3, 4), ranking(3, 2, 5, 1))}
    assert (moves[3].status, moves[3].movement) == ("moved", 2)
    assert (moves[2].status, moves[2].movement) == ("same", 0)
    assert (moves[1].status, moves[1].movement) == ("moved", -3)
    assert (moves[5].status, moves[5].rank_a, moves[5].movement) == ("new", None, None)
    assert (moves[4].status, moves[4].rank_b) == ("dropped", None)
    assert [m.doc_id for m in diff_rankings(ranking(1, 2, 3, 4), ranking(3, 2, 5, 1))] == [3, 2, 5, 1, 4]


def test_store_round_trip_conflict_replace_and_diff(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots.db")
    hostile = "'; DROP TABLE snapshots; --"
    query = SnapshotQuery(text="santa", trends=("#christmas",), genre="Family", model="embedding")
    before = store.save(Snapshot(hostile, query, ranking(1, 2, 3), {"ndcg_at_10": 0.5}))
    assert before.created_at
    with pytest.raises(SnapshotExists):
        store.save(Snapshot(hostile, query, ranking(9), {}))
    store.save(Snapshot("after", query, ranking(2, 1, 4), {"ndcg_at_10": 0.75, "p_at_10": 0.2}))
    loaded = SnapshotStore(tmp_path / "snapshots.db").get(hostile)  # a second store on the same file
    assert (
        loaded.query == query and loaded.ranking == ranking(1, 2, 3) and loaded.metrics == {"ndcg_at_10": 0.5}
    )
    diff = store.diff(hostile, "after")
    assert diff.metric_deltas == {"ndcg_at_10": pytest.approx(0.25)}  # only metrics both snapshots have
    assert {m.doc_id: m.status for m in diff.moves} == {2: "moved", 1: "moved", 4: "new", 3: "dropped"}
    store.save(Snapshot("after", query, ranking(7), {}), replace=True)
    assert [d.doc_id for d in store.get("after").ranking] == [7]
    assert {s.name for s in store.list()} == {hostile, "after"}
    store.delete("after")
    with pytest.raises(SnapshotNotFound):
        store.get("after")
    with pytest.raises(SnapshotNotFound):
        store.delete("after")


@pytest.mark.parametrize(
    "name", ["a/b", "back\\slash", "q?x", "h#x", "100%", "tab\there", " padded", "x" * 101, ""]
)
def test_names_that_the_api_could_not_address_are_refused_on_creation(tmp_path: Path, name: str) -> None:
    store = SnapshotStore(tmp_path / "snapshots.db")
    with pytest.raises(ValueError, match="snapshot names are"):
        store.save(Snapshot(name, SnapshotQuery(text="x"), ranking(1), {}))
    assert store.list() == []
