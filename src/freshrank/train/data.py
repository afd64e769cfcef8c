"""NLI pairs for training and evaluation: local JSONL(.gz)/CSV/Parquet files or a ``datasets`` hub name.

Rows that cannot be used (missing text, unknown label, broken JSON) are skipped and counted, never fatal.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freshrank.catalog.models import Movie

log = logging.getLogger(__name__)

NOT_ENTAILMENT = 3  # two-way rows (RTE): "not entailment" = neutral or contradiction
MAX_TEXT_CHARS = 2000
# Numeric labels follow the SNLI/MultiNLI convention of the ``datasets`` hub.
_LABEL_IDS: dict[str, int] = {
    "entailment": 0,
    "neutral": 1,
    "contradiction": 2,
    "not_entailment": NOT_ENTAILMENT,
    "0": 0,
    "1": 1,
    "2": 2,
}


@dataclass(frozen=True)
class NliPair:
    premise: str
    hypothesis: str
    label: int  # index into classify.card.LABELS, or NOT_ENTAILMENT
    split: str = "train"


@dataclass
class LoadReport:
    """What a load kept and what it skipped (by reason)."""

    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class DataError(ValueError):
    """A data source that cannot be read at all (missing file, unknown format)."""


def _label_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 2 else None  # -1 marks unlabelled hub rows
    return _LABEL_IDS.get(str(value).strip().lower()) if value is not None else None


def _to_pair(row: Any, report: LoadReport) -> NliPair | None:
    if not isinstance(row, dict):
        report.skipped["not an object"] += 1
        return None
    premise, hypothesis = row.get("premise"), row.get("hypothesis")
    if (
        not isinstance(premise, str)
        or not isinstance(hypothesis, str)
        or not premise.strip()
        or not hypothesis.strip()
    ):
        report.skipped["missing text"] += 1
        return None
    label = _label_id(row.get("label"))
    if label is None:
        report.skipped["bad label"] += 1
        return None
    split = str(row.get("split") or "train")
    return NliPair(premise.strip()[:MAX_TEXT_CHARS], hypothesis.strip()[:MAX_TEXT_CHARS], label, split)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _jsonl_rows(path: Path, report: LoadReport) -> Iterator[Any]:
    with _open_text(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                report.skipped["bad json"] += 1


def _csv_rows(path: Path) -> Iterator[Any]:
    with _open_text(path) as fh:
        delimiter = "\t" if ".tsv" in path.suffixes else ","
        yield from csv.DictReader(fh, delimiter=delimiter)


def _parquet_rows(path: Path) -> Iterator[Any]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(f"reading Parquet needs pyarrow: pip install pyarrow ({exc})") from exc
    yield from frame.to_dict(orient="records")


def _hub_rows(name: str, split: str) -> Iterator[Any]:
    """``hub:snli`` or ``hub:nyu-mll/multi_nli`` (needs the ``datasets`` package and network access)."""
    try:
        import datasets
    except ImportError as exc:
        raise DataError("hub data sets need the 'datasets' package: pip install datasets") from exc
    hub_split = {"dev": "validation", "train": "train"}.get(split, split)
    for row in datasets.load_dataset(name, split=hub_split):
        yield {**row, "split": split}


def _rows(source: str | Path, split: str | None, report: LoadReport) -> Iterator[Any]:
    text = str(source)
    if text.startswith("hub:"):
        yield from _hub_rows(text[4:], split or "train")
        return
    path = Path(source)
    if not path.is_file():
        raise DataError(f"NLI data not found: {path}")
    suffixes = "".join(path.suffixes).lower()
    if ".jsonl" in suffixes or ".json" in suffixes:
        yield from _jsonl_rows(path, report)
    elif ".csv" in suffixes or ".tsv" in suffixes:
        yield from _csv_rows(path)
    elif ".parquet" in suffixes:
        yield from _parquet_rows(path)
    else:
        raise DataError(
            f"unknown NLI data format {path.name!r}: use .jsonl[.gz], .csv[.gz], .tsv or .parquet"
        )


def load_pairs(
    sources: Sequence[str | Path] | str | Path,
    *,
    split: str | None = "train",
    max_pairs: int | None = None,
    seed: int = 0,
    report: LoadReport | None = None,
) -> list[NliPair]:
    """Pairs of ``split`` (``None``: all) from every source, shuffled with ``seed``, at most ``max_pairs``."""
    report = report if report is not None else LoadReport()
    source_list = [sources] if isinstance(sources, str | Path) else list(sources)
    pairs: list[NliPair] = []
    for source in source_list:
        for row in _rows(source, split, report):
            pair = _to_pair(row, report)
            if pair is not None and (split is None or pair.split == split):
                pairs.append(pair)
    random.Random(seed).shuffle(pairs)
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    report.kept = len(pairs)
    if report.skipped:
        log.warning("NLI data: skipped %d rows (%s)", sum(report.skipped.values()), dict(report.skipped))
    return pairs


def catalog_pairs(movies: Iterable[Movie], template: str, *, max_pairs: int, seed: int = 0) -> list[NliPair]:
    """In-domain pairs: a movie against one of its own genres (entailment) and one other (contradiction)."""
    rng = random.Random(seed)
    rows = [m for m in movies if m.genres]
    all_genres = sorted({g for m in rows for g in m.genres})
    rng.shuffle(rows)
    pairs: list[NliPair] = []
    for movie in rows:
        if len(pairs) >= max_pairs:
            break
        own = rng.choice(movie.genres)
        others = [g for g in all_genres if g not in movie.genres]
        pairs.append(NliPair(movie.document[:MAX_TEXT_CHARS], template.format(label=own.lower()), 0))
        if others:
            other = rng.choice(others)
            pairs.append(NliPair(movie.document[:MAX_TEXT_CHARS], template.format(label=other.lower()), 2))
    return pairs[:max_pairs]
