"""Catalogue loading: good rows kept, bad rows reported by line number, never an abort."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from freshrank.catalog import CatalogFileError, load_catalog

GOOD = {"id": 10, "title": "Elf", "overview": "A man raised by elves seeks his father.", "genres": ["Family"]}


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_gzipped_jsonl(small_catalog_file: Path) -> None:
    result = load_catalog(small_catalog_file)
    assert [m.id for m in result.movies] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert result.errors == [] and result.duplicate_ids == []
    assert result.movies[0].genres == ("Comedy", "Family")


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "movies.jsonl",
        [
            json.dumps(GOOD),
            '{"id": 11, "title": "Broken", ',  # malformed JSON
            json.dumps({"id": 12, "title": "No overview"}),  # missing required field
            json.dumps({"id": "twelve", "title": "T", "overview": "O"}),  # wrong type
            "[1, 2, 3]",  # not an object
            "",  # blank lines are ignored
            json.dumps({**GOOD, "title": "Elf again"}),  # duplicate id
            json.dumps(
                {"id": 13, "title": "Ünïcødé 🎄", "overview": "\u200bzero width\u202e rtl", "extra": 1}
            ),
        ],
    )
    result = load_catalog(path)
    assert [m.id for m in result.movies] == [10, 13]
    assert result.movies[0].title == "Elf"  # the first occurrence wins
    assert result.duplicate_ids == [10]
    lines = {e.line: e.message for e in result.errors}
    assert sorted(lines) == [2, 3, 4, 5]
    assert "malformed JSON" in lines[2]
    assert "overview" in lines[3]
    assert lines[4].startswith("id")
    assert "JSON object" in lines[5]


def test_broken_utf8_costs_one_line(tmp_path: Path) -> None:
    path = tmp_path / "movies.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"id": 2, "title": "\xff\xfe"}\n')
    result = load_catalog(path)
    assert [m.id for m in result.movies] == [10]
    assert result.errors[0].line == 2 and "UTF-8" in result.errors[0].message


def test_csv_with_list_cells_gzip_detected_by_content(tmp_path: Path) -> None:
    text = (
        "id,title,overview,genres,cast,directors,release_year\n"
        '1,Elf,"Raised by elves, he goes to New York.",Comedy|Family,"[""Will Ferrell""]",Jon Favreau,2003\n'
        "2,,Missing title,Drama,,,\n"
        "3,Too,many,cells,a,b,c,d,e\n"
        "4,Up,A balloon house flies.,Animation|Family,,,notayear\n"
        "5,Up,A balloon house flies.,Animation|Family,,Pete Docter,2009\n"
    )
    path = tmp_path / "movies.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    result = load_catalog(path)
    assert [m.id for m in result.movies] == [1, 5]
    elf = result.movies[0]
    assert elf.genres == ("Comedy", "Family") and elf.cast == ("Will Ferrell",) and elf.release_year == 2003
    assert [e.line for e in result.errors] == [3, 4, 5]


def test_whole_file_problems_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="not found"):
        load_catalog(tmp_path / "missing.jsonl")
    odd = tmp_path / "movies.xml"
    odd.write_text("<movies/>")
    with pytest.raises(CatalogFileError, match="unknown catalogue format"):
        load_catalog(odd)
    truncated = tmp_path / "movies.jsonl.gz"
    truncated.write_bytes(gzip.compress(json.dumps(GOOD).encode() * 50)[:40])
    with pytest.raises(CatalogFileError):
        load_catalog(truncated)


def test_shared_catalogue_loads_cleanly(shared_data: Path) -> None:
    result = load_catalog(shared_data / "movies.jsonl.gz")
    assert len(result.movies) > 11_000
    assert result.errors == [] and result.duplicate_ids == []


def test_ids_outside_the_supported_range_are_bad_rows(tmp_path: Path) -> None:
    ids = [2**63, -1, 10**30, 10, 2**63 - 1]
    rows = [{**GOOD, "id": i} for i in ids]
    result = load_catalog(_write_jsonl(tmp_path / "movies.jsonl", [json.dumps(row) for row in rows]))
    assert [m.id for m in result.movies] == [10, 2**63 - 1]  # the good rows are kept
    assert [e.line for e in result.errors] == [1, 2, 3]
    assert all("outside the supported range" in e.message for e in result.errors)
