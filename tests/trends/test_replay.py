"""JSONL replay: time formats, malformed lines with line numbers, batches, pacing."""

from __future__ import annotations

import json
import time

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

T0_MS = 1_800_000_000_000


def engine() -> TrendEngine:
    return TrendEngine(TrendSettings(window_seconds=60, slide_seconds=10, allowed_lateness_seconds=0,
                                     min_count=1, min_authors=1))


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
