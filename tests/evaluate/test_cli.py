"""The real CLI on a small catalogue with the embedding classifier: evaluate, compare, judgments, report."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrank.cli import app
from freshrank.config import Settings
from freshrank.evaluate.metrics import MetricParams, query_metrics
from freshrank.evaluate.store import open_judgment_store
from freshrank.search.service import SearchService

JUDGMENTS = """trend,genre,doc_id,grade
#christmas,,1,1
#christmas,,2,2
#christmas,,8,1
#christmas,,5,0
#christmas,Family,2,3
#christmas,Family,8,2
#christmas,Family,1,1
#zombies,,4,1
#dinosaurs,,3,1
#dinosaurs,,1,0
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A loaded 8-movie index in a private state dir; the env that points the CLI at it."""
    root = tmp_path_factory.mktemp("evalcli")
    catalog = root / "movies.jsonl"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import SMALL_MOVIES

    catalog.write_text("".join(json.dumps(row) + "\n" for row in SMALL_MOVIES), encoding="utf-8")
    (root / "j.csv").write_text(JUDGMENTS, encoding="utf-8")
    variables = {"FRESHRANK_STATE_DIR": str(root / "state"), "HF_HUB_OFFLINE": "1", "ROOT": str(root)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in variables.items():
            mp.setenv(key, value)
        result = CliRunner().invoke(app, ["load", "-i", str(catalog)])
        assert result.exit_code == 0, result.output
        yield variables


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_evaluate_json_shape_and_it_ranks_as_search_does(env: dict[str, str]) -> None:
    code, out = _cli("evaluate", "--judgments", f"{env['ROOT']}/j.csv", "--json")
    assert code == 0, out
    doc = json.loads(out)  # exactly one JSON document on stdout (logs and progress go to stderr)
    assert {"mean", "baseline", "per_query", "classifier", "model_version", "catalog_size"} <= set(doc)
    assert set(doc["mean"]) >= {"ndcg@10", "p@10", "recall@100"}
    assert set(doc["baseline"]["mean"]) >= {"ndcg@10", "p@10", "recall@100"}
    assert set(doc["per_query"]) == {"#christmas|", "#christmas|Family", "#zombies|", "#dinosaurs|"}
    assert doc["classifier"] == "embedding" and doc["model_version"].startswith("embedding-")
    assert doc["catalog_size"] == 8
    assert doc["run_id"] is not None
    # The per-query figures are those of the ranking search gives for the same trend and genre.
    service = SearchService.from_settings(Settings())
    for qid, figures in doc["per_query"].items():
        trend, genre = qid.split("|")
        ranking = [
            hit.id for hit in service.search(text="", genre=genre or None, hashtags=[trend], limit=100).hits
        ]
        qrels = {int(r.split(",")[2]): int(r.split(",")[3]) for r in JUDGMENTS.splitlines()[1:]
                 if r.split(",")[0] == trend and r.split(",")[1] == genre}  # fmt: skip
        assert figures == pytest.approx(query_metrics(ranking, qrels, MetricParams()))
    # The lexical baseline finds every movie whose text says "christmas" (ids 1, 2 and 8).
    assert doc["baseline"]["per_query"]["#christmas|"]["recall@100"] == 1.0
    mean = sum(q["ndcg@10"] for q in doc["per_query"].values()) / 4
    assert doc["mean"]["ndcg@10"] == pytest.approx(mean)


def test_judgments_commands_and_from_store(env: dict[str, str], tmp_path: Path) -> None:
    code, out = _cli("judgments", "import", f"{env['ROOT']}/j.csv", "--who", "alice", "--json")
    assert code == 0 and json.loads(out)["added"] == 10
    changed = tmp_path / "changed.csv"
    changed.write_text("trend,genre,doc_id,grade\n#christmas,,5,2\nnot,a,valid,row\n", encoding="utf-8")
    code, out = _cli("judgments", "import", str(changed), "--who", "bob", "--json")
    assert code == 0 and json.loads(out) == {
        "added": 0,
        "changed": 1,
        "unchanged": 0,
        "kept": 0,
        "conflicts": 1,
    }
    code, out = _cli("judgments", "history", "--trend", "#christmas", "--doc", "5", "--json")
    assert [(c["old_grade"], c["new_grade"], c["who"]) for c in json.loads(out)["changes"]] == [
        (None, 0, "alice"), (0, 2, "bob")]  # fmt: skip
    code, out = _cli("judgments", "list", "--json")
    queries = {(q["trend"], q["genre"]): q for q in json.loads(out)["queries"]}
    assert queries[("#christmas", "")]["relevant"] == 4
    qrels = tmp_path / "j.qrels"
    assert _cli("judgments", "export", "--format", "qrels", "--out", str(qrels))[0] == 0
    assert len(qrels.read_text().splitlines()) == 10
    code, out = _cli("evaluate", "--from-store", "--no-baseline", "--json")
    assert code == 0 and json.loads(out)["baseline"] is None
    assert _cli("evaluate", "--from-store", "--judgments", str(qrels))[0] == 2  # one source only


def test_compare_and_report(env: dict[str, str], tmp_path: Path) -> None:
    code, out = _cli("compare", "baseline", "embedding", "--judgments", f"{env['ROOT']}/j.csv", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert set(doc["per_query_delta"]) == {"#christmas|", "#christmas|Family", "#zombies|", "#dinosaurs|"}
    assert doc["delta"]["ndcg@10"] == pytest.approx(sum(doc["per_query_delta"].values()) / 4)
    assert 0.0 <= doc["significance"]["randomization_p"] <= 1.0
    code, out = _cli("report", "--out", str(tmp_path / "report"), "--json")
    assert code == 0
    paths = json.loads(out)
    assert Path(paths["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = Path(paths["html"]).read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "#christmas|Family" in page


def test_bad_input_gives_clear_errors(env: dict[str, str], tmp_path: Path) -> None:
    assert _cli("evaluate")[0] == 2  # no judgments given
    assert _cli("evaluate", "--judgments", str(tmp_path / "missing.csv"))[0] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("trend,genre,doc_id,grade\n#" + "x" * 10_000 + ",,1,1\n", encoding="utf-8")
    assert _cli("evaluate", "--judgments", str(bad))[0] == 2  # nothing valid in it
    assert _cli("compare", "baseline", "no-such-model", "--judgments", f"{env['ROOT']}/j.csv")[0] == 3


def test_the_gate_scores_what_evaluate_scores(env: dict[str, str]) -> None:
    """The promotion gate's per-query nDCG@10 equals `freshrank evaluate`'s for the same model: both rank
    through the read-only search over scores the loop calibrated (the gate on a scratch in-memory index)."""
    from freshrank.catalog.models import Movie
    from freshrank.classify.embedding import EmbeddingClassifier
    from freshrank.evaluate.base import Judgment
    from freshrank.train.lifecycle import measure
    from tests.conftest import SMALL_MOVIES

    settings = Settings()
    judgments = [
        Judgment(trend, genre, int(doc), int(grade))
        for trend, genre, doc, grade in (row.split(",") for row in JUDGMENTS.splitlines()[1:])
    ]

    def serving_state() -> list[tuple[str, str]]:
        # The cache of encodings is derived data, rebuilt at will. A WAL database keeps recent writes in its
        # -wal side file (which a reader may also create): checkpoint first, then hash the main files.
        files = [p for p in settings.state_dir.iterdir() if p.is_file() and p.suffix == ".db"]
        for path in files:
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        names = sorted(p.name for p in settings.state_dir.iterdir() if p.name != "cache")
        hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        return [(name, hashes.get(name, "")) for name in names if not name.endswith(("-wal", "-shm"))]

    state = serving_state()
    metrics = measure(
        EmbeddingClassifier(cache_dir=settings.cache_dir),
        settings,
        movies=[Movie.model_validate(row) for row in SMALL_MOVIES],
        judgments=judgments,
    )
    assert state == serving_state()  # the gate wrote no serving state (also when it runs first)
    code, out = _cli(
        "evaluate", "--judgments", f"{env['ROOT']}/j.csv", "--classifier", "embedding", "--no-record",
        "--no-baseline", "--crowd", settings.lifecycle.crowd, "--json",
    )  # fmt: skip
    assert code == 0, out
    doc = json.loads(out)
    evaluated = {qid: figures["ndcg@10"] for qid, figures in doc["crowd"]["per_query"].items()}
    assert set(evaluated) == {"#christmas|", "#christmas|Family", "#zombies|", "#dinosaurs|"}
    assert metrics.per_query == pytest.approx(evaluated, abs=1e-12)  # the gate compares the crowd figure
    assert metrics.extra["isolated_ndcg_at_10"] == pytest.approx(doc["mean"]["ndcg@10"], abs=1e-12)


def _stream(path: Path) -> Path:
    """Two hours of posts: steady filler tags, then #Dinosaurs bursting (40 authors) in the last 10 min."""
    t0 = 1_800_000_000_000
    rows = [
        {"text": f"#filler{i % 30}", "created_at": t0 + i * 4_000, "user": f"u{i % 200}"} for i in range(1800)
    ]
    rows += [
        {"text": "wow #Dinosaurs", "created_at": t0 + 6_600_000 + i * 10_000, "user": f"d{i}"}
        for i in range(40)
    ]
    rows.sort(key=lambda r: r["created_at"])  # type: ignore[arg-type, return-value]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_evaluate_in_the_crowd_of_a_replayed_stream(env: dict[str, str], tmp_path: Path) -> None:
    from freshrank.evaluate.runner import in_crowd
    from freshrank.trends.base import Trend

    stream = _stream(tmp_path / "stream.jsonl")
    code, out = _cli("evaluate", "--judgments", f"{env['ROOT']}/j.csv", "--crowd", str(stream), "--json")
    assert code == 0, out
    doc = json.loads(out)
    crowd = doc["crowd"]
    assert crowd["trends"] == ["#Dinosaurs"]  # the burst trends, the steady filler tags do not
    assert set(crowd["per_query"]) == set(doc["per_query"])
    # #dinosaurs is the crowd's own trend: injected, it replaces it, so the ranking is the isolated one
    assert crowd["per_query"]["#dinosaurs|"] == doc["per_query"]["#dinosaurs|"]
    # the others rank with #Dinosaurs boosting too, as search ranks with that trending set
    service = SearchService.from_settings(Settings())
    trending = [Trend("#Dinosaurs", "dinosaurs", 10.0, 40, 0.0)]
    ranking = [
        hit.id
        for hit in service.search(
            text="", genre=None, hashtags=None, limit=100, crowd=in_crowd(trending, "#zombies")
        ).hits
    ]
    qrels = {4: 1}
    assert crowd["per_query"]["#zombies|"] == pytest.approx(query_metrics(ranking, qrels, MetricParams()))
    assert crowd["ndcg@10_ratio"] == pytest.approx(crowd["mean"]["ndcg@10"] / doc["mean"]["ndcg@10"])
    store = open_judgment_store(Settings().resolved_judgments_url)  # both figures in the history
    (run,) = [r for r in store.runs(kind="evaluate", limit=100) if r.id == doc["run_id"]]
    store.close()
    assert run.mean == doc["mean"] and run.details["crowd_mean"] == crowd["mean"]
    missing = _cli("evaluate", "--judgments", f"{env['ROOT']}/j.csv", "--crowd", str(tmp_path / "no.jsonl"))
    assert missing[0] == 2
