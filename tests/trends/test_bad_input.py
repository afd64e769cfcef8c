"""Bad replay input never costs the stored trends: nothing valid keeps them (exit 4), far-future times and
over-long lines are reported per line, posts without a time replay at arrival time only when asked."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrank.cli import app
from freshrank.config import TrendSettings
from freshrank.exitcodes import EXIT_NO_DATA
from freshrank.trends.engine import TrendEngine
from freshrank.trends.sources.replay import (
    MAX_FUTURE_SECONDS,
    ReplayReport,
    bounded_lines,
    posts_from_rows,
    replay_file,
    replay_lines,
)

T0_MS = 1_800_000_000_000  # 2027-01-15, within the year ahead the replay accepts


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHRANK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FRESHRANK_TRENDS__MIN_AUTHORS", "1")
    monkeypatch.delenv("FRESHRANK_TREND_STORE_URL", raising=False)


def engine() -> TrendEngine:
    return TrendEngine(
        TrendSettings(
            window_seconds=60, slide_seconds=10, allowed_lateness_seconds=0, min_count=1, min_authors=1
        )
    )


def good_lines(count: int = 40) -> list[str]:
    rows = [{"text": "#steady", "created_at": T0_MS + 1000 * i, "user": "u"} for i in range(count)]
    return [json.dumps(row) for row in rows]


def test_a_replay_with_no_valid_post_keeps_the_stored_trends(tmp_path: Path, env: None) -> None:
    runner = CliRunner()
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(good_lines()) + "\n")
    first = runner.invoke(app, ["trends", "replay", "-i", str(good), "--json"])
    assert first.exit_code == 0, first.output
    stored = json.loads(first.stdout)
    assert [t["hashtag"] for t in stored] == ["#steady"]

    noise = tmp_path / "noise.bin"
    noise.write_bytes(os.urandom(200_000))
    bad = runner.invoke(app, ["trends", "replay", "-i", str(noise), "--json"])
    assert bad.exit_code == EXIT_NO_DATA
    assert "no valid post" in bad.stderr and "left as they were" in bad.stderr
    assert bad.stdout == ""
    top = runner.invoke(app, ["trends", "top", "--json"])
    assert json.loads(top.stdout) == stored


@pytest.mark.parametrize("when", ["2099-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", 253_402_300_799_999])
def test_far_future_times_are_rejected_per_line(tmp_path: Path, when: object) -> None:
    lines = good_lines()
    lines.insert(5, json.dumps({"text": "#future", "created_at": when, "user": "u"}))
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(lines) + "\n")
    expected = f"more than {MAX_FUTURE_SECONDS // 86_400} days after now"
    for replay in ("lines", "file"):
        e = engine()
        if replay == "lines":
            report = replay_lines(e, lines)
        else:
            with path.open("rb") as fh:
                report = replay_file(e, fh)
        e.finish()
        assert [(m.line, m.reason) for m in report.malformed] == [(6, f"created_at is {expected}")], replay
        assert report.posts == 40 and e.stats.late == 0
        assert [t.hashtag for t in e.top(5)] == ["#steady"]
    paced = list(posts_from_rows(lines, report := ReplayReport()))
    assert len(paced) == 40 and report.malformed[0].line == 6


def test_far_future_line_through_the_cli_keeps_the_others(tmp_path: Path, env: None) -> None:
    path = tmp_path / "f.jsonl"
    future = json.dumps({"text": "#x", "created_at": "9999-12-31T23:59:59Z"})
    path.write_text("\n".join([*good_lines(), future]) + "\n")
    result = CliRunner().invoke(app, ["trends", "replay", "-i", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "line 41: created_at is more than" in result.stderr
    assert [t["hashtag"] for t in json.loads(result.stdout)] == ["#steady"]


def test_long_lines_are_skipped_with_their_numbers(tmp_path: Path) -> None:
    lines = good_lines(10)
    lines[3] = json.dumps({"text": "#long " + "x" * 5000, "created_at": T0_MS + 3000})
    lines[9] = json.dumps({"text": "#tail " + "y" * 9000, "created_at": T0_MS + 9000})  # the last, no newline
    data = "\n".join(lines)
    path = tmp_path / "l.jsonl"
    path.write_text(data)
    with path.open("rb") as fh:
        report = replay_file(engine(), fh, max_line_bytes=1000)
    assert [m.line for m in report.malformed] == [4, 10]
    assert report.malformed[0].reason.startswith("line longer than 1,000 bytes (5,0")
    assert report.posts == 8 and report.lines == 10
    text_report = ReplayReport()
    kept = list(bounded_lines(io.StringIO(data), 1000, text_report))
    assert len(kept) == 10 and kept[3] == "\n" and [m.line for m in text_report.malformed] == [4, 10]
    replay_lines(engine(), kept, report=text_report)
    assert text_report.posts == 8


def test_posts_without_a_time_replay_at_arrival_time_only_when_asked(tmp_path: Path, env: None) -> None:
    path = tmp_path / "untimed.jsonl"
    rows = [{"text": f"#now post {i}", "user": f"u{i}"} for i in range(30)]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    runner = CliRunner()
    plain = runner.invoke(app, ["trends", "replay", "-i", str(path)])
    assert plain.exit_code == EXIT_NO_DATA and "missing field 'created_at'" in plain.stderr
    arrival = runner.invoke(app, ["trends", "replay", "-i", str(path), "--arrival-time", "--json"])
    assert arrival.exit_code == 0, arrival.output
    assert "30 posts" in arrival.stderr
    assert [t["hashtag"] for t in json.loads(arrival.stdout)] == ["#now"]


def test_stream_from_stdin_with_nothing_valid_keeps_the_stored_trends(tmp_path: Path, env: None) -> None:
    runner = CliRunner()
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(good_lines()) + "\n")
    stored = json.loads(runner.invoke(app, ["trends", "replay", "-i", str(good), "--json"]).stdout)
    result = runner.invoke(app, ["trends", "stream", "--source", "stdin"], input="garbage\n{}\n")
    assert result.exit_code == EXIT_NO_DATA and "left as they were" in result.stderr
    assert json.loads(runner.invoke(app, ["trends", "top", "--json"]).stdout) == stored
