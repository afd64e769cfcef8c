"""``freshrank demo`` end to end on small data that the test builds: catalogue, stream, judgments."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrank.catalog import load_catalog
from freshrank.cli import app
from tests.conftest import SMALL_MOVIES

CHRISTMAS_MOVIES = {1, 2, 8}
TWEETS = [
    "Morning run done #running #fitness",
    "Coffee first #mondaymotivation",
    "Great game tonight #football",
    "New recipe today #foodie #vegan",
    "Sunset at the beach #travel",
    "Reading a good book #amreading",
]


@pytest.fixture
def data_dir(tmp_path: Path, shared_data: Path) -> Path:
    """8 known movies plus 80 real ones (so a per-label z-score means something), tweets, judgments."""
    root = tmp_path / "data"
    (root / "tweets").mkdir(parents=True)
    (root / "judgments").mkdir()
    filler = [
        m
        for m in load_catalog(shared_data / "movies.jsonl.gz").movies
        if m.id > 100 and "christmas" not in m.document.lower()  # ids 1-8 are the known movies
    ]
    with gzip.open(root / "movies.jsonl.gz", "wt", encoding="utf-8") as fh:
        for row in SMALL_MOVIES:
            fh.write(json.dumps(row) + "\n")
        for movie in filler[:80]:
            fh.write(movie.model_dump_json() + "\n")
    with gzip.open(root / "tweets" / "tweeteval_hashtag_tweets.jsonl.gz", "wt", encoding="utf-8") as fh:
        for text in TWEETS:
            fh.write(json.dumps({"text": text, "hashtags": [], "source": "test"}) + "\n")
    with (root / "judgments" / "family_christmas.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trend", "genre", "doc_id", "grade"])
        writer.writerows([["#christmas", "Family", movie_id, 2] for movie_id in sorted(CHRISTMAS_MOVIES)])
    return root


def _demo(data_dir: Path, state: Path, shipped: bool = False) -> dict[str, object]:
    env = {"FRESHRANK_STATE_DIR": str(state), "HF_HUB_OFFLINE": "1"}
    env["FRESHRANK_CLASSIFIER__SHIPPED"] = str(shipped).lower()
    args = ["demo", "--data-dir", str(data_dir), "--background-rate", "0.2", "--json"]
    result = CliRunner().invoke(app, args, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_demo_shows_christmas_rising_and_reuses_work(data_dir: Path, tmp_path: Path) -> None:
    doc = _demo(data_dir, tmp_path / "state")
    assert doc["catalog"]["indexed"] == 88  # type: ignore[index]
    trends = doc["trends"]
    assert trends["after"][0]["hashtag"] == "#christmas"  # type: ignore[index]
    assert all(t["hashtag"] != "#christmas" for t in trends["before"])  # type: ignore[index]
    before = {hit["id"] for hit in doc["family_before"][:3]}  # type: ignore[index]
    after = {hit["id"] for hit in doc["family_after"][:3]}  # type: ignore[index]
    assert after == CHRISTMAS_MOVIES and before != CHRISTMAS_MOVIES
    refresh = doc["refresh"]
    assert "christmas" in refresh["after"]["scored"]  # type: ignore[index]
    evaluation = doc["evaluation"]
    assert evaluation["mean"]["ndcg@10"] > evaluation["baseline"]["mean"]["ndcg@10"] - 1e-9  # type: ignore[index]
    assert evaluation["per_query"]["#christmas|Family"]["ndcg@10"] == pytest.approx(1.0)  # type: ignore[index]

    again = _demo(data_dir, tmp_path / "state")  # a rerun scores nothing new
    assert again["refresh"]["before"]["scored"] == [] and again["refresh"]["after"]["scored"] == []  # type: ignore[index]
    assert [h["id"] for h in again["family_after"]] == [h["id"] for h in doc["family_after"]]  # type: ignore[index]


def test_a_fresh_install_demos_the_shipped_champion_against_both_baselines(
    data_dir: Path, tmp_path: Path
) -> None:
    """As on a fresh clone (the packaged champion on, its default): the champion, not the embedding, boosts,
    and the evaluation compares it with BM25 and with the embedding classifier's boost."""
    from freshrank.classify.card import read_card
    from freshrank.classify.shipped import SHIPPED_DIR

    doc = _demo(data_dir, tmp_path / "state", shipped=True)
    evaluation = doc["evaluation"]
    version = read_card(SHIPPED_DIR).version
    assert evaluation["model_version"].startswith(f"{version}+")  # type: ignore[index]  # + calibration
    assert set(evaluation["embedding"]["per_query"]) == set(evaluation["per_query"])  # type: ignore[index]
    after = {hit["id"] for hit in doc["family_after"][:3]}  # type: ignore[index]
    assert after == CHRISTMAS_MOVIES


def test_evaluation_table_names_the_champion_and_shows_the_lift(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's table: the champion's version in its title, the lift per group and on the mean."""
    from rich.console import Console

    from freshrank import demo

    console = Console(record=True, width=200)
    monkeypatch.setattr(demo, "out", console)
    figures = {"ndcg@10": 0.6, "p@10": 0.5, "recall@100": 0.7}
    base = {"ndcg@10": 0.4, "p@10": 0.5, "recall@100": 0.7}
    doc = {
        "model_version": "hybrid-abc123",
        "classifier": "champion",
        "per_query": {"#christmas|Family": figures},
        "mean": figures,
        "baseline": {"per_query": {"#christmas|Family": base}, "mean": base},
    }
    demo._show_evaluation(doc)
    text = console.export_text()
    assert "champion hybrid-abc123" in text and "embedding" not in text
    rows = [line for line in text.splitlines() if "#christmas|Family" in line or "mean" in line]
    assert len(rows) == 2 and all("+0.200 (+50%)" in row for row in rows)

    embedding = {"ndcg@10": 0.321, "p@10": 0.4, "recall@100": 0.6}
    demo._show_evaluation(
        doc | {"embedding": {"per_query": {"#christmas|Family": embedding}, "mean": embedding}}
    )
    text = console.export_text()
    rows = [line for line in text.splitlines() if "#christmas|Family" in line or "mean" in line]
    assert "embedding" in text and len(rows) == 2 and all("0.321" in row for row in rows)
