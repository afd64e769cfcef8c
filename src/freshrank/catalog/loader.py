"""Load the movie catalogue from JSONL or CSV (gzip or not): bad rows are reported and skipped."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from pydantic import ValidationError

from freshrank.catalog.models import Movie

# Fields that hold lists; a CSV cell holds them as a JSON array or as "a|b|c".
_LIST_FIELDS = ("genres", "cast", "directors")
_MAX_REPORTED_TEXT = 200
# Ids are stored as signed 64-bit integers (SQLite INTEGER, OpenSearch long, the judgments' BIGINT).
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class RowError:
    """One rejected row: its 1-based line number in the file (the header is line 1 in a CSV) and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class CatalogLoad:
    """The valid movies (first occurrence of each id wins), the rejected rows and the repeated ids."""

    path: Path
    movies: list[Movie] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    duplicate_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "movies": len(self.movies),
            "errors": [{"line": e.line, "message": e.message} for e in self.errors],
            "duplicate_ids": self.duplicate_ids,
        }


class CatalogFileError(Exception):
    """The file as a whole cannot be read (missing, unknown format, not text)."""


def load_catalog(path: Path | str) -> CatalogLoad:
    """Read every row of ``path`` (``.jsonl``/``.csv``, optionally gzipped) into validated movies."""
    path = Path(path)
    if not path.is_file():
        raise CatalogFileError(f"catalogue file not found: {path}")
    fmt = _format_of(path)
    result = CatalogLoad(path=path)
    seen: set[int] = set()
    try:
        with _open_binary(path) as fh:
            rows = _jsonl_rows(fh) if fmt == "jsonl" else _csv_rows(_as_text(fh))
            for line, row in rows:
                _add_row(result, seen, line, row)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise CatalogFileError(f"cannot read {path}: {exc}") from exc
    return result


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if last in (".csv", ".tsv"):
        return "csv"
    raise CatalogFileError(f"unknown catalogue format {path.name!r}: expected .jsonl or .csv, optionally .gz")


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it starts with the gzip magic number (whatever its name)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return cast(IO[bytes], gzip.open(path, "rb") if gzipped else path.open("rb"))  # noqa: SIM115


def _as_text(fh: IO[bytes]) -> IO[str]:
    return io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")


def _jsonl_rows(fh: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Decoded line by line, so one line of broken UTF-8 costs that line only."""
    for line_no, raw in enumerate(fh, start=1):
        try:
            line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            yield line_no, _Malformed(f"not UTF-8 text ({exc.reason} at byte {exc.start})")
            continue
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, _Malformed(f"malformed JSON ({exc.msg} at column {exc.colno})")
        except RecursionError:
            yield line_no, _Malformed("JSON nested too deeply")


def _csv_rows(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(fh)
    for row in reader:
        line_no = reader.line_num
        if None in row:
            yield line_no, _Malformed(f"{len(row[None]) if row[None] else 0} more cells than the header")
            continue
        yield line_no, {k: _csv_cell(k, v) for k, v in row.items() if k is not None}


def _csv_cell(key: str, value: str | None) -> Any:
    if value is None or value == "":
        return [] if key in _LIST_FIELDS else None
    if key in _LIST_FIELDS:
        if value.startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value  # validation reports it
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


@dataclass(frozen=True)
class _Malformed:
    message: str


def _add_row(result: CatalogLoad, seen: set[int], line: int, row: Any) -> None:
    if isinstance(row, _Malformed):
        result.errors.append(RowError(line, row.message))
        return
    if not isinstance(row, dict):
        result.errors.append(RowError(line, f"expected a JSON object, got {type(row).__name__}"))
        return
    try:
        movie = Movie.model_validate(row)
    except ValidationError as exc:
        result.errors.append(RowError(line, _describe(exc)))
        return
    if not 0 <= movie.id <= MAX_ID:
        result.errors.append(RowError(line, f"id: {movie.id} is outside the supported range 0..2^63-1"))
        return
    if movie.id in seen:
        result.duplicate_ids.append(movie.id)
        return
    seen.add(movie.id)
    result.movies.append(movie)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{where}: {error['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= _MAX_REPORTED_TEXT else text[:_MAX_REPORTED_TEXT] + "…"
