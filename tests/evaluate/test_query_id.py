"""QueryId: the one encoding of a judged (trend, genre) query (evaluate, the gate, the monitor)."""

from __future__ import annotations

import pytest

from freshrank.evaluate.base import Judgment, QueryId
from freshrank.evaluate.io import decode_query_id, encode_query_id
from freshrank.evaluate.store import qrels_of


@pytest.mark.parametrize(
    "query",
    [QueryId("#christmas"), QueryId("#christmas", "Family"), QueryId("#a|b", ""), QueryId("#x y", "Sci Fi")],
)
def test_text_and_trec_forms_round_trip(query: QueryId) -> None:
    assert QueryId.parse(str(query)) == query
    encoded = encode_query_id(query)
    assert " " not in encoded and decode_query_id(encoded) == query


def test_text_form_is_what_per_query_metrics_are_keyed_by() -> None:
    assert str(QueryId("#christmas", "Family")) == "#christmas|Family"
    assert str(QueryId("#zombies")) == "#zombies|"
    assert QueryId.parse("#zombies") == QueryId("#zombies", "")


def test_qrels_group_judgments_by_query_in_first_seen_order() -> None:
    judgments = [Judgment("#b", "", 1, 1), Judgment("#a", "Family", 2, 3), Judgment("#b", "", 3, 0)]
    qrels = qrels_of(judgments)
    assert list(qrels) == [QueryId("#b"), QueryId("#a", "Family")]
    assert qrels[QueryId("#b")] == {1: 1, 3: 0}
    assert judgments[1].query_id == "#a|Family"
