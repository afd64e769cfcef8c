"""Judgment files: the shared CSV (``trend,genre,doc_id,grade``), TREC qrels and Quepid's ratings CSV.

Readers never stop at a bad line: they return the good judgments and one message per bad line (with its
number). Query ids in qrels are ``<trend>|<genre>`` with both parts percent-encoded (qrels columns are
whitespace-separated, genres have spaces); a plain TREC topic id reads as a trend with no genre. Quepid
queries are ``<trend>`` or ``<trend>|<genre>``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO
from urllib.parse import quote, unquote

from freshrank.evaluate.base import Judgment, QueryId
from freshrank.evaluate.store import validate

Format = Literal["csv", "qrels", "quepid"]
FORMATS: tuple[str, ...] = ("csv", "qrels", "quepid")
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass
class ParsedJudgments:
    judgments: list[Judgment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line N: why"
    duplicates: int = 0  # same (trend, genre, doc) again in the file: the last grade wins, reported


def guess_format(path: Path) -> Format:
    """``.qrels``/``.txt`` → qrels; a CSV whose header starts with ``query`` → quepid; else the shared CSV."""
    if path.suffix.lower() in (".qrels", ".txt", ".trec"):
        return "qrels"
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline().strip().lower().replace(" ", "")
    return "quepid" if header.startswith("query,") else "csv"


def _grade(text: str) -> int:
    value = float(text)  # Quepid exports "2.0"
    if not value.is_integer():
        raise ValueError(f"grade must be a whole number, got {text!r}")
    return int(value)


def _doc_id(text: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValueError(f"doc_id must be a non-negative integer (a TMDB id), got {text[:40]!r}")
    return int(text)


def _extra_cells(parsed: ParsedJudgments, line: int, row: dict[str | None, object]) -> bool:
    """Report a CSV row with more cells than its header (``csv.DictReader`` files them under None)."""
    extra = row.get(None)
    if not extra:
        return False
    count = len(extra) if isinstance(extra, list) else 1
    parsed.errors.append(f"line {line}: {count} more cell(s) than the header")
    return True


def _add(parsed: ParsedJudgments, line: int, make: Judgment) -> None:
    try:
        parsed.judgments.append(validate(make))
    except ValueError as exc:
        parsed.errors.append(f"line {line}: {exc}")


def _finish(parsed: ParsedJudgments) -> ParsedJudgments:
    last: dict[tuple[str, str, int], Judgment] = {}
    for j in parsed.judgments:
        last[j.key] = j
    parsed.duplicates = len(parsed.judgments) - len(last)
    parsed.judgments = list(last.values())
    return parsed


def read_csv(fh: TextIO) -> ParsedJudgments:
    parsed = ParsedJudgments()
    reader = csv.DictReader(fh)
    missing = {"trend", "doc_id", "grade"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(
            f"not a judgments CSV: header must be trend,genre,doc_id,grade (missing {sorted(missing)})"
        )
    for row in reader:
        line = reader.line_num
        if _extra_cells(parsed, line, row):
            continue
        try:
            judgment = Judgment(
                (row.get("trend") or "").strip(),
                (row.get("genre") or "").strip(),
                _doc_id(row.get("doc_id") or ""),
                _grade(row.get("grade") or ""),
            )
        except (ValueError, TypeError) as exc:
            parsed.errors.append(f"line {line}: {exc}")
            continue
        _add(parsed, line, judgment)
    return _finish(parsed)


def decode_query_id(qid: str) -> QueryId:
    """A TREC qrels query id (``QueryId`` text, each part URL-quoted so it holds no blank or ``|``)."""
    trend, _, genre = qid.partition("|")
    return QueryId(unquote(trend), unquote(genre))


def encode_query_id(query: QueryId) -> str:
    return f"{quote(query.trend, safe='#')}|{quote(query.genre, safe='')}"


def read_qrels(fh: TextIO) -> ParsedJudgments:
    parsed = ParsedJudgments()
    for line, text in enumerate(fh, start=1):
        if not text.strip():
            continue
        parts = text.split()
        if len(parts) != 4:
            parsed.errors.append(
                f"line {line}: qrels lines are 'query_id iteration doc_id grade', got {text[:60]!r}"
            )
            continue
        try:
            query = decode_query_id(parts[0])
            judgment = Judgment(query.trend, query.genre, _doc_id(parts[2]), _grade(parts[3]))
        except ValueError as exc:
            parsed.errors.append(f"line {line}: {exc}")
            continue
        _add(parsed, line, judgment)
    return _finish(parsed)


def read_quepid(fh: TextIO) -> ParsedJudgments:
    parsed = ParsedJudgments()
    reader = csv.DictReader(fh)
    if {"query", "docid", "rating"} - set(reader.fieldnames or []):
        raise ValueError("not a Quepid ratings CSV: header must be query,docid,rating")
    for row in reader:
        line = reader.line_num
        if _extra_cells(parsed, line, row):
            continue
        try:
            query = (row.get("query") or "").strip()
            parsed_query = QueryId.parse(query)
            trend, genre = parsed_query.trend, parsed_query.genre
            judgment = Judgment(trend.strip(), genre.strip(), _doc_id(row.get("docid") or ""),
                                _grade(row.get("rating") or ""))  # fmt: skip
        except (ValueError, TypeError) as exc:
            parsed.errors.append(f"line {line}: {exc}")
            continue
        _add(parsed, line, judgment)
    return _finish(parsed)


READERS = {"csv": read_csv, "qrels": read_qrels, "quepid": read_quepid}


def read_judgments(path: Path, fmt: Format | None = None) -> ParsedJudgments:
    """Parse a judgments file (format guessed from its name and header when not given)."""
    if not path.is_file():
        raise FileNotFoundError(f"judgments file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB: not a judgments file")
    fmt = fmt or guess_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        try:
            return READERS[fmt](fh)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not UTF-8 text: {exc}") from exc


def write_judgments(judgments: Iterable[Judgment], fh: TextIO, fmt: Format = "csv") -> int:
    """Write judgments in ``fmt``; returns how many."""
    count = 0
    if fmt == "qrels":
        for j in judgments:
            fh.write(f"{encode_query_id(j.qid)} 0 {j.doc_id} {j.grade}\n")
            count += 1
        return count
    writer = csv.writer(fh, lineterminator="\n")
    if fmt == "quepid":
        writer.writerow(["query", "docid", "rating"])
        rows: Iterable[list[object]] = ([f"{j.trend}|{j.genre}" if j.genre else j.trend, j.doc_id, j.grade]
                                        for j in judgments)  # fmt: skip
    elif fmt == "csv":
        writer.writerow(["trend", "genre", "doc_id", "grade"])
        rows = ([j.trend, j.genre, j.doc_id, j.grade] for j in judgments)
    else:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def judgments_to_text(judgments: Iterable[Judgment], fmt: Format = "csv") -> str:
    buffer = io.StringIO()
    write_judgments(judgments, buffer, fmt)
    return buffer.getvalue()
