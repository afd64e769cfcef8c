"""The Flink job's plain-Python parts and the launcher's checks (no mini-cluster: these run in seconds)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from freshrank.config import Settings, TrendSettings
from freshrank.trends.flink import launcher, sql
from freshrank.trends.flink.cli import register
from freshrank.trends.flink.launcher import FlinkUnavailable, run_trend_job, stage_input
from freshrank.trends.flink.rows import UNREADABLE, PostTags, PostTime, TopRow, WindowCollector
from freshrank.trends.flink.spec import KafkaTopic


def test_sql_literals_are_quoted_and_control_characters_refused() -> None:
    assert sql.literal("it's") == "'it''s'"
    assert sql.literal("'; DROP TABLE posts; --") == "'''; DROP TABLE posts; --'"
    with pytest.raises(ValueError):
        sql.literal("topic\n'connector'='filesystem'")


def test_kafka_source_quotes_user_values_and_bounds_the_scan() -> None:
    ddl = sql.kafka_source_ddl(KafkaTopic(topic="posts'x", bootstrap="127.0.0.1:9092"), 60, bounded=True)
    assert "'topic' = 'posts''x'" in ddl
    assert "'scan.bounded.mode' = 'latest-offset'" in ddl
    assert "scan.bounded.mode" not in sql.kafka_source_ddl(KafkaTopic(topic="t"), 60, bounded=False)
    assert "TIMESTAMPADD(SECOND, -60, ts)" in ddl


def test_views_count_each_post_once_per_slice_and_rank_per_tick() -> None:
    trends = TrendSettings(window_seconds=1800, slide_seconds=10, top_n=20, min_count=5)
    text = "\n".join([*sql.slice_views(trends), *sql.ranking_views(trends)])
    assert "HOP(" not in text  # no per-window copies of posts
    assert "TUMBLE(TABLE tagged, DESCRIPTOR(ts), INTERVAL '10' SECOND(9))" in text
    # seeds: the trailing count over the slices (t - W, t]; probes: at most W / S ticks per seed
    assert f"RANGE BETWEEN {sql._span(1790)} PRECEDING AND CURRENT ROW" in text
    assert "ARRAY[0, 1, 2," in text and ", 179], first_offset + 1, 180)" in text
    assert "tick + 1800000" in text and "tick + 3600000" in text  # to the baseline, then out
    assert "ROW_NUMBER() OVER" in text and "rn <= 20" in text and "c >= 5" in text


def test_span_literals() -> None:
    assert sql._span(1790) == "INTERVAL '0 00:29:50' DAY TO SECOND"
    assert sql._span(2 * 86400 + 3661) == "INTERVAL '2 01:01:01' DAY TO SECOND"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-24T08:00:00.250Z", 1798099200250),
        ("2026-12-24T10:00:00+02:00", 1798099200000),
        ("2026-12-24T08:00:00", 1798099200000),  # naive = UTC
        ("1798099200250", 1798099200250),  # epoch ms as the JSON number's text
        ("1798099200.25", 1798099200250),  # epoch seconds
        ("1.79809920025E12", 1798099200250),  # how a JSON number may reach a STRING column
    ],
)
def test_post_time_reads_the_formats_the_replay_reads(raw: str, expected: int) -> None:
    assert PostTime()(raw, "text") == expected


@pytest.mark.parametrize("raw", ["yesterday", "", "NaN", "inf", "0", "-5", None])
def test_post_time_rejects_unreadable_times(raw: str | None) -> None:
    post_time = PostTime()
    assert post_time(raw, "text") == UNREADABLE
    assert post_time.bad == 1


def test_post_tags_counts_a_key_once_keeps_the_first_spelling_and_blocks() -> None:
    tags = PostTags(["#Spam", "ＮＯＰＥ"])
    assert list(tags("#Love #love #LOVE #café #spam #SPAM https://x.org/#frag #'; DROP")) == [
        ("love", "Love"),
        ("café", "café"),
    ]
    assert list(tags(None)) == [] and list(tags("#" + "x" * 10_000)) == []


def _row(end: int, key: str, rank: int) -> TopRow:
    return TopRow(end, key, key.title(), count=5, baseline=1, authors=3, authored=5, score=1.0, rank=rank)


def test_window_collector_hands_over_finished_windows_in_rank_order() -> None:
    collector = WindowCollector(slide_ms=10_000)
    assert collector.add_top(_row(10_000, "b", 2)) is None
    assert collector.add_top(_row(10_000, "a", 1)) is None
    finished = collector.add_top(_row(20_000, "c", 1))
    assert finished is not None and [r.key for r in finished] == ["a", "b"]
    assert [r.key for r in collector.flush() or []] == ["c"]


def test_window_collector_reports_the_window_at_the_last_post_not_the_trailing_ones() -> None:
    collector = WindowCollector(slide_ms=10_000)
    collector.add_posts(3, 10_000)
    collector.add_posts(2, 20_000)
    for end in (10_000, 20_000, 30_000, 40_000):  # a bounded run also fires windows after the last post
        collector.add_top(_row(end, f"t{end}", 1))
    collector.flush()
    assert collector.posts == 5 and collector.final_end_ms == 20_000
    assert [r.key for r in collector.final()] == ["t20000"]


def test_top_row_becomes_a_trend_with_a_label() -> None:
    trend = TopRow(0, "sharkweek", "SharkWeek", 7, 2, 4, 7, 1.5, 1).to_trend()
    assert (trend.hashtag, trend.label, trend.count, trend.baseline, trend.authors) == (
        "#SharkWeek",
        "shark week",
        7,
        2.0,
        4,
    )
    assert TopRow(0, "x", "x", 7, 2, 0, 0, 1.5, 1).to_trend().authors is None  # source without authors


def test_a_missing_flink_virtualenv_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHRANK_FLINK_VENV", str(tmp_path / "nowhere"))
    posts = tmp_path / "posts.jsonl"
    posts.write_text("")
    with pytest.raises(FlinkUnavailable, match="make flink-venv"):
        run_trend_job(posts, None, Settings(state_dir=tmp_path))


def test_a_missing_connector_jar_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHRANK_DOWNLOAD_CACHE", str(tmp_path))
    with pytest.raises(FlinkUnavailable, match="flink-jars.sh"):
        launcher.kafka_connector_jar()


def test_kafka_down_or_a_missing_topic_is_a_clear_error() -> None:
    with pytest.raises(FlinkUnavailable, match="127.0.0.1:1 is unreachable: .*bootstrap"):
        launcher.check_kafka(KafkaTopic(topic="t", bootstrap="127.0.0.1:1"), timeout_s=2)
    with pytest.raises(FlinkUnavailable, match="does not exist"):  # the real broker of scripts/kafka.sh
        launcher.check_kafka(KafkaTopic(topic=f"freshrank-test-missing-{uuid.uuid4().hex}"))


def test_input_is_staged_under_a_plain_name_and_gz_is_decompressed(tmp_path: Path) -> None:
    import gzip

    hidden = tmp_path / "_posts.jsonl.gz"  # Flink's file source would skip a name starting with '_'
    with gzip.open(hidden, "wt") as fh:
        fh.write('{"text": "#a", "created_at": 1}\n')
    staged = stage_input(hidden, tmp_path / "work")
    assert staged.name == "posts.jsonl" and staged.read_text() == '{"text": "#a", "created_at": 1}\n'
    with pytest.raises(FileNotFoundError):
        stage_input(tmp_path / "missing.jsonl", tmp_path / "work2")


def _cli() -> typer.Typer:
    trends = typer.Typer()
    register(trends)
    return trends


def test_cli_needs_exactly_one_source(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(_cli(), ["flink"]).exit_code == 2
    both = runner.invoke(_cli(), ["flink", "--input", str(tmp_path), "--kafka-topic", "t"])
    assert both.exit_code == 2
    missing = runner.invoke(_cli(), ["flink", "--input", str(tmp_path / "missing.jsonl")])
    assert missing.exit_code == 2 and "input not found" in missing.output


def test_cli_reports_an_unreachable_broker_with_exit_code_3(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"text": "#a", "created_at": 1}) + "\n")
    result = CliRunner().invoke(
        _cli(), ["produce", "--input", str(posts), "--topic", "t", "--bootstrap", "127.0.0.1:1", "--json"]
    )
    assert result.exit_code == 3
    assert "Kafka unavailable" in result.output and "unreachable" in result.output
