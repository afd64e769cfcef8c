"""JSONL replay: time formats, malformed lines with line numbers, batches, pacing."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from freshrank.config import TrendSettings
from freshrank.trends.engine import TrendEngine
from freshrank.trends.sources.replay import (
    BATCH_LINES,
    ReplayReport,
    parse_time_ms,
    posts_from_rows,
    replay_lines,
)
from freshrank.trends.spellings import NATIVE

T0_MS = 1_800_000_000_000


def engine() -> TrendEngine:
    return TrendEngine(
        TrendSettings(
            window_seconds=60,
            slide_seconds=10,
            allowed_lateness_seconds=0,
            min_count=1,
            min_authors=1,
            min_z=-1e9,
        )
    )


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        ("2027-01-15T08:00:00Z", 1_800_000_000_000),
        ("2027-01-15T08:00:00.250Z", 1_800_000_000_250),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000_000),
        ("2027-01-15T08:00:00", 1_800_000_000_000),
        (1_800_000_000_250, 1_800_000_000_250),
        ("1800000000250", 1_800_000_000_250),
        (1_800_000_000.25, 1_800_000_000_250),  # epoch seconds are recognised by their size
    ],
)
def test_parse_time(raw: object, ms: int) -> None:
    assert parse_time_ms(raw) == ms


def test_malformed_lines_are_reported_with_numbers_and_never_abort() -> None:
    good = json.dumps({"text": "#a", "created_at": T0_MS, "user": "u1"})
    lines = [
        good,
        "{not json",
        json.dumps({"text": "#a"}),
        json.dumps({"text": 5, "created_at": T0_MS}),
        json.dumps({"text": "#a", "created_at": "yesterday"}),
        "",
        json.dumps(["a", "list"]),
        json.dumps({"text": "#a", "created_at": True}),
        good,
    ]
    report = replay_lines(engine(), [line + "\n" for line in lines])
    assert report.posts == 2
    assert report.malformed_count == 6
    assert [bad.line for bad in report.malformed] == [2, 3, 4, 5, 7, 8]
    assert "invalid JSON" in report.malformed[0].reason
    assert "created_at" in report.malformed[1].reason


def test_batches_with_a_bad_line_fall_back_to_line_by_line() -> None:
    lines = [json.dumps({"text": f"#t{i % 3}", "created_at": T0_MS + i}) for i in range(BATCH_LINES * 2 + 5)]
    lines[BATCH_LINES + 7] = "]["
    e = engine()
    report = replay_lines(e, lines)
    assert report.posts == len(lines) - 1 and report.lines == len(lines)
    assert [bad.line for bad in report.malformed] == [BATCH_LINES + 8]
    assert e.stats.posts == report.posts


def test_giant_and_empty_texts() -> None:
    lines = [
        json.dumps({"text": "", "created_at": T0_MS}),
        json.dumps({"text": "x" * 1_000_000 + " #big", "created_at": T0_MS + 1}),
        json.dumps({"text": "#" + "y" * 10_000, "created_at": T0_MS + 2}),
    ]
    e = engine()
    report = replay_lines(e, lines)
    e.finish()
    assert report.posts == 3 and report.malformed_count == 0
    assert [t.hashtag for t in e.top()] == ["#big"]


def test_speed_paces_event_time() -> None:
    lines = [json.dumps({"text": "#a", "created_at": T0_MS + i * 1000}) for i in range(3)]
    start = time.monotonic()
    replay_lines(engine(), lines, speed=10.0)  # 2 event seconds at 10x: ~0.2 s
    assert time.monotonic() - start >= 0.19


def test_on_tick_is_called_when_the_window_slides() -> None:
    lines = [json.dumps({"text": "#a", "created_at": T0_MS + i * 5000}) for i in range(10)]
    ticks: list[object] = []
    replay_lines(engine(), lines, on_tick=lambda e: ticks.append(e.tick))
    assert len(ticks) >= 4 and ticks == sorted(ticks)


def test_posts_from_rows() -> None:
    report = ReplayReport()
    posts = list(posts_from_rows([json.dumps({"text": "#a", "created_at": T0_MS, "user": 7}), "x"], report))
    assert [(p.text, p.created_at, p.user) for p in posts] == [("#a", T0_MS / 1000, "7")]
    assert report.malformed_count == 1


def _mixed_lines(count: int, seed: int = 5) -> list[str]:
    """Posts with late and out-of-order events, many tags and spellings, authors, bad and blank lines."""
    rng = random.Random(seed)
    tags = [f"tag{i}" for i in range(300)] + ["Love", "LOVE", "love", "Straße", "STRASSE", "#café"]
    lines = []
    for i in range(count):
        ms = T0_MS + i * 300 - (rng.randrange(120_000) if rng.random() < 0.2 else 0)
        if rng.random() < 0.01:
            ms -= 10_000_000  # long past the window: late
        text = " ".join(f"#{rng.choice(tags)}" for _ in range(rng.randrange(4))) + " words"
        row: dict[str, object] = {"text": text, "created_at": ms if i % 3 else f"{ms}"}
        if rng.random() < 0.8:
            row["user"] = f"u{rng.randrange(50)}" if i % 5 else rng.randrange(50)
        line = json.dumps(row, ensure_ascii=False)
        roll = rng.random()
        if roll < 0.01:
            line = line[:-3]
        elif roll < 0.02:
            line = json.dumps({"text": text})
        elif roll < 0.03:
            line = ""
        lines.append(line + ("\r\n" if i % 7 == 0 else "\n"))
    return lines


_SETTINGS = TrendSettings(
    window_seconds=600,
    slide_seconds=10,
    allowed_lateness_seconds=30,
    min_count=2,
    min_authors=2,
    max_tags=200,
    top_n=50,
    min_z=-1e9,  # counting is what is compared: rank every counted tag
)


def test_parallel_file_replay_matches_the_sequential_replay(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from freshrank.trends.sources import replay

    lines = _mixed_lines(20_000)
    path = tmp_path / "posts.jsonl"
    last = b'{"text": "#last", "created_at": 1}'  # no final newline
    path.write_bytes("".join(lines).encode("utf-8") + last)
    monkeypatch.setattr(replay, "BLOCK_BYTES", 50_000)  # many blocks, each of whole lines
    for workers in (0, 2):
        report, engine = _replay_both(path, _SETTINGS, workers)
        assert report.malformed_count > 300 and engine.stats.late > 0 and engine.stats.evicted_tags > 0


def _replay_both(path: Path, settings: TrendSettings, workers: int) -> tuple[ReplayReport, TrendEngine]:
    """``replay_file`` (column-wise blocks where pyarrow reads them) matches the post-by-post replay."""
    from freshrank.trends.sources import replay

    expected_engine = TrendEngine(settings)
    with path.open(encoding="utf-8", errors="replace") as fh:  # one post at a time, as a live stream would go
        expected = replay_lines(expected_engine, fh, on_tick=lambda e: None)
    expected_engine.finish()
    engine = TrendEngine(settings)
    with path.open("rb") as raw:
        report = replay.replay_file(engine, raw, workers=workers)
    engine.finish()
    assert report == expected
    assert engine.stats == expected_engine.stats
    assert engine.tracked_tags == expected_engine.tracked_tags
    assert [t.to_dict() for t in engine.top()] == [t.to_dict() for t in expected_engine.top()]
    return report, engine


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    text = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@pytest.mark.parametrize("extra", [False, True], ids=["reader", "pyarrow"])
@pytest.mark.parametrize("times", ["iso", "epoch_ms", "epoch_s", "mixed"])
def test_column_blocks_match_the_sequential_replay(
    times: str, extra: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Blocks the compiled reader takes (exactly text, created_at, user) and blocks it leaves to pyarrow
    (another field) count as the post-by-post replay does."""
    from freshrank.trends.sources import columns, replay

    rng = random.Random(11)
    tags = [f"tag{i}" for i in range(300)] + ["Love", "LOVE", "love", "Straße", "STRASSE", "café"]
    lines = []
    for i in range(12_000):
        ms = T0_MS + i * 300 - (rng.randrange(120_000) if rng.random() < 0.2 else 0)
        if rng.random() < 0.01:
            ms -= 10_000_000  # long past the window: late
        at: object = {"iso": _iso(ms), "epoch_ms": ms, "epoch_s": ms // 1000, "mixed": _iso(ms)}[times]
        if times == "mixed" and i % 1000 == 0:
            at = ms  # an epoch number among ISO strings: that block is parsed line by line
        row: dict[str, object] = {
            "text": " ".join(f"#{rng.choice(tags)}" for _ in range(rng.randrange(4))) + " x",
            "created_at": at,
        }
        if extra:
            row["extra"] = {"nested": [1, None]}
        if rng.random() < 0.8:
            row["user"] = f"u{rng.randrange(50)}"
        elif rng.random() < 0.5:
            row["user"] = None
        lines.append(json.dumps(row, ensure_ascii=i % 2 == 0))
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setattr(replay, "BLOCK_BYTES", 40_000)
    if times == "iso":
        _replay_both(path, _SETTINGS, workers=2)
    seen: list[str] = []
    parse = columns.parse_columns
    monkeypatch.setattr(
        replay, "parse_columns", lambda *a: seen.append(type(out := parse(*a)).__name__) or out
    )
    read = columns._read
    by_pyarrow: list[bool] = []
    monkeypatch.setattr(columns, "_read", lambda block: by_pyarrow.append(True) or read(block))
    _replay_both(path, _SETTINGS, workers=0)
    if extra and times == "mixed":  # pyarrow needs one type per column; the line parser takes the rest
        assert "Posts" in seen and "Columns" in seen
    else:
        assert set(seen) == {"Columns"}
    assert bool(by_pyarrow) == (extra or not NATIVE)


def test_replay_without_the_compiled_scanner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The pure-Python path (an install without Rust) counts exactly as the compiled one."""
    from freshrank.trends import spellings
    from freshrank.trends.sources import replay

    lines = [
        json.dumps(
            {"text": f"#t{i % 50} #Caf\u00e9{i % 3} &amp; #x{i % 7}", "created_at": _iso(T0_MS + i * 200)}
        )
        for i in range(6000)
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setattr(replay, "BLOCK_BYTES", 40_000)
    monkeypatch.setattr(spellings, "NATIVE", False)
    _, engine = _replay_both(path, _SETTINGS, workers=0)
    assert not engine.spellings.native and engine.top()


@pytest.mark.parametrize(
    "bad",
    [
        '{"text": 5, "created_at": "2027-01-15T08:00:00.000Z"}',  # text not a string
        '{"text": "#a", "created_at": "2027-01-15T08:00:00.000Z", "user": 7}',  # a number as user
        '{"text": "#a"}',  # no time
        "",  # a blank line
        "   \t",  # a line of spaces
        "\ufeff" + json.dumps({"text": "#a", "created_at": "2027-01-15T08:00:00.000Z"}),  # BOM
        '{"text": "#a", "created_at": "0000-01-01T00:00:00.000Z"}',  # no year 0 in Python
        '{"text": "#a", "created_at": "2027-02-30T00:00:00.000Z"}',
        '{"text": "#a", "created_at": "2027-01-15T08:00:00+01:00"}',  # an offset: read line by line
        '{"text": "#a", "created_at": " 2027-01-15T08:00:00Z"}',
        '{"text": "#a", "created_at": 1800000000000.5}',
        '{"text": "#a", "created_at": 99999999999999999999}',
        '{"text": "#a", "text": "#b", "created_at": 1800000000000}',  # duplicate field
        '{"text": "#a\\ud800", "created_at": 1800000000000}',  # lone surrogate
        '{"text": "#a", "created_at": 1800000000000} {"text": "#b", "created_at": 1800000000000}',
        '{"text": "#a", "created_at": 1800000000000, "z": NaN}',
        '["a", "list"]',
        "{not json",
        json.dumps({"text": "x" * 200_000 + " #giant", "created_at": _iso(T0_MS + 1)}),  # > a block
    ],
)
def test_odd_lines_in_column_blocks(bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from freshrank.trends.sources import replay

    good = [
        json.dumps({"text": f"#t{i % 7} #Same", "created_at": _iso(T0_MS + i * 1000), "user": f"u{i % 4}"})
        for i in range(3000)
    ]
    path = tmp_path / "posts.jsonl"
    path.write_bytes(("\n".join([*good[:1500], bad, *good[1500:]]) + "\n").encode("utf-8", "surrogatepass"))
    monkeypatch.setattr(replay, "BLOCK_BYTES", 30_000)
    _replay_both(path, _SETTINGS, workers=0)


def test_invalid_utf8_in_a_column_block(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from freshrank.trends.sources import replay

    good = [json.dumps({"text": f"#t{i % 7}", "created_at": T0_MS + i * 1000}).encode() for i in range(2000)]
    path = tmp_path / "posts.jsonl"
    path.write_bytes(
        b"\n".join([*good[:900], b'{"text": "#caf\xe9", "created_at": 1800000000000}', *good[900:]])
    )
    monkeypatch.setattr(replay, "BLOCK_BYTES", 20_000)
    _replay_both(path, _SETTINGS, workers=0)
