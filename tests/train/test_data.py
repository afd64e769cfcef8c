"""NLI pair loading: JSONL/CSV/Parquet, bad rows skipped and counted, splits, limits, catalogue pairs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from freshrank.catalog.models import Movie
from freshrank.train.data import NOT_ENTAILMENT, DataError, LoadReport, catalog_pairs, load_pairs

ROWS = [
    {
        "premise": "A man plays guitar.",
        "hypothesis": "A man makes music.",
        "label": "entailment",
        "split": "train",
    },
    {"premise": "A dog runs.", "hypothesis": "A cat sleeps.", "label": "contradiction", "split": "train"},
    {"premise": "Kids at a park.", "hypothesis": "Kids are happy.", "label": "neutral", "split": "dev"},
    {"premise": "It rains.", "hypothesis": "It is dry.", "label": "not_entailment", "split": "train"},
    {"premise": "Numeric label.", "hypothesis": "Hub style.", "label": 1, "split": "train"},
    {"premise": "", "hypothesis": "No premise.", "label": "entailment", "split": "train"},
    {"premise": "Bad label.", "hypothesis": "x", "label": "maybe", "split": "train"},
    {"premise": "Unlabelled hub row.", "hypothesis": "x", "label": -1, "split": "train"},
    {"hypothesis": "missing premise", "label": "neutral"},
]


def _write_jsonl(path: Path) -> Path:
    with gzip.open(path, "wt") as fh:
        for row in ROWS:
            fh.write(json.dumps(row) + "\n")
        fh.write("{not json\n\n[1, 2]\n")
    return path


def test_jsonl_keeps_good_rows_and_counts_bad_ones(tmp_path: Path) -> None:
    report = LoadReport()
    pairs = load_pairs(_write_jsonl(tmp_path / "p.jsonl.gz"), split="train", report=report)
    assert sorted(p.hypothesis for p in pairs) == [
        "A cat sleeps.",
        "A man makes music.",
        "Hub style.",
        "It is dry.",
    ]
    assert {p.label for p in pairs} == {0, 1, 2, NOT_ENTAILMENT}
    assert report.kept == 4
    assert report.skipped == {"missing text": 2, "bad label": 2, "bad json": 1, "not an object": 1}


def test_split_none_and_max_pairs(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl.gz")
    assert [p.hypothesis for p in load_pairs(path, split="dev")] == ["Kids are happy."]
    everything = load_pairs(path, split=None)
    assert len(everything) == 5
    assert len(load_pairs(path, split=None, max_pairs=2, seed=1)) == 2
    assert load_pairs(path, split=None, seed=3) == load_pairs(path, split=None, seed=3)


def test_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        ROWS[:5] + [{"premise": None, "hypothesis": "h", "label": "entailment", "split": "train"}]
    )
    frame["label"] = frame["label"].astype(str)  # Parquet columns have one type
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet")
    from_csv = load_pairs(tmp_path / "p.csv", split="train")
    from_parquet = load_pairs(tmp_path / "p.parquet", split="train")
    assert len(from_csv) == len(from_parquet) == 4
    assert {p.label for p in from_csv} == {p.label for p in from_parquet} == {0, 1, 2, NOT_ENTAILMENT}


def test_several_sources_and_clear_errors(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl.gz")
    assert len(load_pairs([path, path], split="train")) == 8
    with pytest.raises(DataError, match="not found"):
        load_pairs(tmp_path / "missing.jsonl")
    (tmp_path / "p.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown NLI data format"):
        load_pairs(tmp_path / "p.xlsx")


def test_giant_texts_are_truncated(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"premise": "x" * 1_000_000, "hypothesis": "y", "label": "neutral"}) + "\n")
    (pair,) = load_pairs(path)
    assert len(pair.premise) <= 2000


def test_catalog_pairs_use_own_and_other_genres(small_movies: list[Movie]) -> None:
    pairs = catalog_pairs(small_movies, "This movie is about {label}.", max_pairs=100, seed=0)
    assert len(pairs) == 2 * len(small_movies)
    by_doc = {m.document: m for m in small_movies}
    for pair in pairs:
        genre = pair.hypothesis.removeprefix("This movie is about ").removesuffix(".")
        own = {g.lower() for g in by_doc[pair.premise].genres}
        assert (genre in own) == (pair.label == 0)
    assert len(catalog_pairs(small_movies, "{label}", max_pairs=3)) == 3
